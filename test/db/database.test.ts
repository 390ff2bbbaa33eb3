import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { openDatabase } from '../../src/db/database.js'

describe('a role database file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-db-'))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it.each([
    [undefined, 2],
    ['FULL' as const, 2],
    ['NORMAL' as const, 1],
  ])('given synchronous=%s, then SQLite syncs at that level (%i) in WAL mode', (synchronous, level) => {
    const db = openDatabase(path.join(dir, `${synchronous ?? 'default'}.db`), synchronous ? { synchronous } : {})
    try {
      expect(db.$client.pragma('synchronous', { simple: true })).toBe(level)
      expect(db.$client.pragma('journal_mode', { simple: true })).toBe('wal')
    } finally {
      db.$client.close()
    }
  })
})
