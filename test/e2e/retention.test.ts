import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openDatabase } from '../../src/db/database.js'
import type { RoleName } from '../../src/saga/define.js'
import type { GcReport } from '../../src/ops/gc.js'
import { changelogTopic } from '../../src/topics.js'
import { System, waitFor } from './harness.js'

// Long enough that a fresh order.created is never taken for an old one on a busy machine, short
// enough that finished orders are forgotten within the test.
const RETENTION = '5s'

describe('retention on a real broker: finished orders leave the files and the changelogs', () => {
  let system: System
  const orders: string[] = []

  const rowsOf = (role: RoleName, ids: string[]): number => {
    const db = openDatabase(path.join(system.dataDir, `${role}.db`), { readonly: true })
    try {
      const json = JSON.stringify(ids)
      const q = (table: string, column: string) => db.$client.prepare(`SELECT count(*) FROM ${table} WHERE ${column} IN (SELECT value FROM json_each(?))`).pluck().get(json) as number
      return q('state', 'key') + q('processed_messages', 'seen_key')
    } finally {
      db.$client.close()
    }
  }

  /** The last record of each key of a changelog, null for a tombstone. */
  const latest = async (role: 'orchestrator' | 'notifier'): Promise<Map<string, string | null>> => {
    const last = new Map<string, string | null>()
    await system.bus.read({ topic: changelogTopic(system.prefix, role), handler: (r) => void last.set(r.key?.toString() ?? '', r.value?.toString() ?? null) })
    return last
  }

  beforeAll(async () => {
    system = await System.start(['api', 'orchestrator', 'inventory', 'payment'], { SAGA_RETENTION: RETENTION })
    // The notifier keeps everything, so that `gc` has something to report and prune.
    await system.startRole('notifier', { SAGA_RETENTION: '1h' })
    for (let i = 0; i < 4; i++) orders.push((await system.postOrder({ user_id: `u${i}`, items: [{ sku: 'book', qty: 1 }], amount: 100 + i })).order_id)
    await system.waitForFinals(orders)
  })
  afterAll(async () => {
    await system?.stop()
  })

  it("once finished and idle for SAGA_RETENTION, an order's rows leave every role's file, and its changelog keys end in tombstones", async () => {
    for (const role of ['orchestrator', 'inventory', 'payment', 'api'] as const) {
      await waitFor(() => rowsOf(role, orders) === 0, `${role} to forget the finished orders`, 60_000, 500)
    }
    const changelog = await latest('orchestrator')
    for (const id of orders) {
      expect(changelog.has(`s|saga|${id}`)).toBe(true)
      expect(changelog.get(`s|saga|${id}`)).toBeNull()
      expect(changelog.get(`p|${id}`)).toBeNull()
    }
    // Sent outbox rows go too, after their window (SAGA_RETENTION here).
    const db = openDatabase(path.join(system.dataDir, 'orchestrator.db'), { readonly: true })
    try {
      await waitFor(() => db.$client.prepare('SELECT count(*) FROM outbox').pluck().get() === 0, "the orchestrator's sent outbox rows to go", 60_000, 500)
    } finally {
      db.$client.close()
    }
  })

  it('an orchestrator restarted on a deleted file restores from the changelog without the forgotten orders, and still runs sagas', async () => {
    await system.kill('orchestrator', 'SIGTERM')
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(path.join(system.dataDir, `orchestrator.db${suffix}`), { force: true })
    await system.startRole('orchestrator', { SAGA_RETENTION: RETENTION })
    const restored = await waitFor(() => {
      const lines = system.logs('orchestrator').filter((l) => l.msg.startsWith('partition assigned'))
      return lines.length === 8 ? lines : undefined
    }, 'the restarted orchestrator to restore its 8 partitions')
    // It read the forgotten orders' records (puts, then tombstones), and kept none of them.
    expect(restored.reduce((n, l) => n + (l.records as number), 0)).toBeGreaterThan(0)
    expect(rowsOf('orchestrator', orders)).toBe(0)

    const after = (await system.postOrder()).order_id
    expect((await system.waitForFinals([after])).get(after)).toBe('order.completed')
    orders.push(after)
  })

  it('`sagactl gc --dry-run` counts what a role kept and changes nothing; `gc` then prunes it and tombstones its changelog', async () => {
    const notifierOrders = orders.slice(0, 4)
    expect(rowsOf('notifier', notifierOrders)).toBeGreaterThan(0)
    await system.kill('notifier', 'SIGTERM')
    const env = { SAGA_RETENTION: RETENTION }

    const dry = await system.cli(['gc', '--dry-run', '--role', 'notifier', '--json'], env)
    expect(dry.code).toBe(0)
    const planned = JSON.parse(dry.stdout) as GcReport
    expect(planned.dry_run).toBe(true)
    expect(planned.files.map((f) => f.role)).toEqual(['notifier'])
    // Each order's events, at least created and completed, are the notifier's processed ids.
    expect(planned.files[0]!.pruned.entries).toBeGreaterThanOrEqual(notifierOrders.length)
    expect(planned.files[0]!.pruned.processed_ids).toBeGreaterThanOrEqual(2 * notifierOrders.length)
    const before = rowsOf('notifier', notifierOrders)
    expect(before).toBeGreaterThan(0)

    const run = await system.cli(['gc', '--role', 'notifier', '--json'], env)
    expect(run.code).toBe(0)
    // The order placed by the previous test may come of age between the two runs: never fewer.
    expect((JSON.parse(run.stdout) as GcReport).files[0]!.pruned.entries).toBeGreaterThanOrEqual(planned.files[0]!.pruned.entries)
    expect(rowsOf('notifier', notifierOrders)).toBe(0)
    const changelog = await latest('notifier')
    for (const id of notifierOrders) {
      expect(changelog.has(`p|${id}`)).toBe(true)
      expect(changelog.get(`p|${id}`)).toBeNull()
    }

    const help = await system.cli(['gc', '--help'])
    expect(help.stdout).toContain('--dry-run')
  })

  it('`sagactl verify` passes over the whole run', async () => {
    const result = await system.cli(['verify', '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, orders: orders.length })
  })
})
