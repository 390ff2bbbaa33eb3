import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import type { ConsumedRecord } from '../../src/kafka/port.js'
import { deadLetter } from '../../src/runtime/dead-letter.js'
import { LocalStore } from '../../src/runtime/local-store.js'
import type { RoleHandler } from '../../src/runtime/role.js'

const role: RoleHandler = { name: 'payment', consumes: ['paymentCommands'], handle: () => ({}) }
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5)
const record: ConsumedRecord = { topic: 'payment.commands', partition: 2, offset: 41n, key: Buffer.from('order-1'), value: Buffer.from('{"bad'), headers: { traceparent: 't' }, timestamp: 0n }

describe('dead letters: a record that cannot be handled, set aside with its reason', () => {
  let dir: string
  let db: Db
  let store: LocalStore
  const outbox = () => db.$client.prepare('SELECT topic, msg_key AS key, value, headers, part FROM outbox').all() as { topic: string; key: string; value: string; headers: string; part: number }[]

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-dead-letter-'))
    db = openDatabase(path.join(dir, 'payment.db'))
    store = new LocalStore(db, undefined, () => NOW)
  })
  afterEach(() => {
    db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('given a record, then a letter with the reason, the role, the position and the original bytes goes to the dead-letter topic, under its key', () => {
    expect(deadLetter({ store, role, dlq: 'dlq', now: NOW }, record, 'invalid JSON', 'record:payment.commands:2:41')).toBe('dead-lettered')
    const [row] = outbox()
    expect(row).toMatchObject({ topic: 'dlq', key: 'order-1', part: 2 })
    expect(JSON.parse(row!.headers)).toEqual({ 'x-dlq-reason': 'invalid JSON', 'x-dlq-role': 'payment' })
    const letter = JSON.parse(row!.value) as Record<string, unknown>
    expect(letter).toMatchObject({ reason: 'invalid JSON', role: 'payment', source: { topic: 'payment.commands', partition: 2, offset: '41' }, key: 'order-1', headers: { traceparent: 't' }, dead_lettered_at: '2026-01-02T03:04:05.000Z' })
    expect(Buffer.from(letter.value_base64 as string, 'base64').toString()).toBe('{"bad')
  })

  it('given the same position dead-lettered again, then it is a duplicate and no second letter is written', () => {
    const id = 'record:payment.commands:2:41'
    deadLetter({ store, role, dlq: 'dlq', now: NOW }, record, 'invalid JSON', id)
    expect(deadLetter({ store, role, dlq: 'dlq', now: NOW + 1 }, record, 'invalid JSON', id)).toBe('duplicate')
    expect(outbox()).toHaveLength(1)
  })

  it('given the same record handled twice, then the letter id is the same both times', () => {
    const idOf = (file: string): unknown => {
      const other = openDatabase(path.join(dir, file))
      try {
        deadLetter({ store: new LocalStore(other, undefined, () => NOW), role, dlq: 'dlq', now: NOW }, record, 'r', 'record:payment.commands:2:41')
        return (JSON.parse(other.$client.prepare('SELECT value FROM outbox').pluck().get() as string) as { dead_letter_id: unknown }).dead_letter_id
      } finally {
        other.$client.close()
      }
    }
    expect(idOf('a.db')).toBe(idOf('b.db'))
  })

  it('given a record without a key, then the letter is keyed by its topic and partition', () => {
    deadLetter({ store, role, dlq: 'dlq', now: NOW }, { ...record, key: null }, 'r', 'record:payment.commands:2:41')
    expect(outbox()[0]!.key).toBe('payment.commands:2')
  })
})
