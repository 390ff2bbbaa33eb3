import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import { event } from '../../src/envelope.js'
import type { ConsumedRecord } from '../../src/kafka/port.js'
import { DEFAULT_ORDER_LIMITS } from '../../src/order-schema.js'
import { keysOf, Pruner } from '../../src/runtime/pruner.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { orchestratorRole, SAGA_SCOPE } from '../../src/services/orchestrator/role.js'
import type { SagaState } from '../../src/saga/decide.js'
import { changelogTopic, topicNames } from '../../src/topics.js'
import { policy } from '../services/orchestrator/given.js'
import { MemoryBus } from './memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const topics = topicNames('', orderSaga)
const changelog = changelogTopic('', 'orchestrator')
const RETENTION = 60_000
const PART = 2

describe('retention in the runtime: the real orchestrator on a real SQLite file, Kafka in memory', () => {
  let dir: string
  let bus: MemoryBus
  let now: number
  const dbs: Db[] = []
  const runtimes: Runtime[] = []
  const role = orchestratorRole(orderSaga, policy, DEFAULT_ORDER_LIMITS, RETENTION)

  async function instance(name: string): Promise<{ runtime: Runtime; db: Db; pruner: Pruner }> {
    const db = openDatabase(path.join(dir, name, 'orchestrator.db'))
    dbs.push(db)
    const runtime = new Runtime({ role, db, bus, topics, changelog, log: pino({ level: 'silent' }), groupId: 'g', clock: () => now })
    runtimes.push(runtime)
    await runtime.start()
    const pruner = new Pruner({
      db,
      rule: { retentionMs: RETENTION, settled: role.settled! },
      sentOutboxKeepMs: 10_000,
      scope: () => runtime.ownedPartitions(),
      forget: (part, entries) => runtime.forget(part, keysOf(entries)),
      clock: () => now,
      batch: 2,
    })
    return { runtime, db, pruner }
  }

  let offset = 0n
  function on(type: string, order: string, payload: Record<string, unknown> = {}): ConsumedRecord {
    const value = event(type, { order_id: order, saga_id: order, payload }, now, randomUUID())
    return { topic: topics.orderEvents, partition: PART, offset: offset++, key: null, value: Buffer.from(JSON.stringify(value)), headers: {}, timestamp: 0n }
  }
  const createdOf = (order: string) => on('order.created', order, { user_id: null, items: [{ sku: 'book', qty: 1 }], amount: 5 })

  /** Runs a saga to order.completed through the real decisions. */
  function complete(runtime: Runtime, order: string): ConsumedRecord {
    const created = createdOf(order)
    runtime.handleRecord(created)
    runtime.handleRecord(on('inventory.reserved', order, { reservation_id: 'r', attempt: 1 }))
    runtime.handleRecord(on('payment.succeeded', order, { payment_id: 'p', amount: 5, attempt: 1 }))
    expect(runtime.read<SagaState>(SAGA_SCOPE, order)?.status).toBe('completed')
    return created
  }

  const rowsOf = (db: Db, order: string) => ({
    state: db.$client.prepare('SELECT count(*) FROM state WHERE key = ?').pluck().get(order),
    processed: db.$client.prepare('SELECT count(*) FROM processed_messages WHERE seen_key = ?').pluck().get(order),
  })
  // t| tombstones are left out: every cleared timer writes one, pruned or not.
  const tombstonesOf = (order: string) => bus.published.filter((r) => r.topic === changelog && r.key.endsWith(order) && !r.key.startsWith('t|') && r.value === null).map((r) => ({ key: r.key, partition: r.partition }))

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-pruner-'))
    bus = new MemoryBus()
    now = 1_000_000
  })
  afterEach(async () => {
    // Stopped even when a test failed half-way, so no timer of theirs outlives the file.
    await Promise.all(runtimes.splice(0).map((r) => r.stop()))
    for (const db of dbs.splice(0)) db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('given finished sagas idle for SAGA_RETENTION and one still running, when the pruner runs, then the finished ones go with changelog tombstones, and a restore from the changelog does not bring them back', async () => {
    const a = await instance('a')
    await bus.assign([PART])
    const done = [randomUUID(), randomUUID(), randomUUID()]
    for (const order of done) complete(a.runtime, order)
    const running = randomUUID()
    a.runtime.handleRecord(createdOf(running))
    await a.runtime.drain(2_000)

    // Not yet idle long enough: nothing goes.
    now += RETENTION - 1
    expect((await a.pruner.run()).entries).toBe(0)

    now += 2
    const pruned = await a.pruner.run()
    expect(pruned).toMatchObject({ entries: 3, processed_ids: 9, states: 3, tombstones: 6, kept: { timer: 1 } })
    await a.runtime.drain(2_000)
    for (const order of done) {
      expect(rowsOf(a.db, order)).toEqual({ state: 0, processed: 0 })
      expect(tombstonesOf(order)).toEqual([
        { key: `s|saga|${order}`, partition: PART },
        { key: `p|${order}`, partition: PART },
      ])
    }
    // Its step timer may have fired meanwhile (the clock jumped past it): running or waiting, it stays.
    expect(a.runtime.read<SagaState>(SAGA_SCOPE, running)?.status).toMatch(/^(running|waiting_retry)$/)
    // The tombstones went out through the partition's transactional writer, as any changelog record.
    expect(bus.writers.get(PART)!.commits.some((c) => c.records.some((r) => r.value === null && r.key === `p|${done[0]}`))).toBe(true)

    bus.revoke([PART])
    const b = await instance('b')
    await bus.assign([PART])
    for (const order of done) expect(rowsOf(b.db, order)).toEqual({ state: 0, processed: 0 })
    expect(b.runtime.read<SagaState>(SAGA_SCOPE, running)?.status).toMatch(/^(running|waiting_retry)$/)
    await Promise.all([a.runtime.stop(), b.runtime.stop()])
  })

  it('given a forgotten saga, when its order.created comes again, then no saga starts: the duplicate is older than SAGA_RETENTION', async () => {
    const { runtime, pruner } = await instance('a')
    await bus.assign([PART])
    const order = randomUUID()
    const created = complete(runtime, order)
    await runtime.drain(2_000)
    now += RETENTION + 1
    expect((await pruner.run()).entries).toBe(1)
    const commandsBefore = bus.published.filter((r) => r.topic === topics.inventoryCommands).length

    expect(runtime.handleRecord({ ...created, offset: offset++ })).toBe('processed')
    expect(runtime.read(SAGA_SCOPE, order)).toBeUndefined()
    await runtime.drain(2_000)
    expect(bus.published.filter((r) => r.topic === topics.inventoryCommands)).toHaveLength(commandsBefore)
    await runtime.stop()
  })

  it('given a partition this instance no longer owns, then the pruner leaves it alone, and forget refuses it', async () => {
    const { runtime, pruner } = await instance('a')
    await bus.assign([PART])
    const order = randomUUID()
    complete(runtime, order)
    await runtime.drain(2_000)
    // The partition's transaction has settled: revoking now keeps the rows until the wipe runs.
    bus.revoke([PART])
    now += RETENTION + 1
    expect(runtime.forget(PART, [`p|${order}`])).toBe(false)
    expect((await pruner.run()).entries).toBe(0)
    expect(tombstonesOf(order)).toEqual([])
    await runtime.stop()
  })

  it('given sent and unsent outbox rows, then only sent rows older than their window are deleted', async () => {
    const { runtime, db, pruner } = await instance('a')
    await bus.assign([PART])
    // Rows of no partition (a command, an HTTP request) are the ones the file's outbox keeps in a group.
    const submit = (order: string) => runtime.submit((_, ctx) => ({ messages: [{ topic: 'orderEvents', envelope: event('saga.retry-requested', { order_id: order, saga_id: order, payload: { step: 'reserve_inventory', attempt: 2 } }, ctx.now, ctx.newId()) }] }))
    submit(randomUUID())
    await runtime.drain(2_000)
    const sent = db.$client.prepare('SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL').pluck().get() as number
    expect(sent).toBe(1)
    now += 10_001
    // Written now, and refused by the broker: unsent, and new.
    bus.failNext = 1
    submit(randomUUID())
    expect((await pruner.run()).outbox_rows).toBe(sent)
    expect(db.$client.prepare('SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL').pluck().get()).toBe(0)
    expect(db.$client.prepare('SELECT count(*) FROM outbox WHERE sent_at IS NULL').pluck().get()).toBe(1)
    await runtime.stop()
  })
})
