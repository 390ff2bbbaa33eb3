import { randomUUID } from 'node:crypto'

import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import type { Db } from '../../src/db/database.js'
import { event } from '../../src/envelope.js'
import type { ConsumedRecord } from '../../src/kafka/port.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { topicNames } from '../../src/topics.js'
import { groupedRuntime, type GroupedRuntime } from './grouped-runtime.js'
import type { MemoryBus } from './memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const topics = topicNames('', orderSaga)
const PART = 4

/** Counts each order's messages in its state and sends one command per message; throws or fails the database on demand. */
const counter: RoleHandler = {
  name: 'orchestrator',
  consumes: ['orderEvents'],
  handle(message, store, ctx) {
    if (message.payload.ioerror) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    store.put('count', message.order_id, (store.get<number>('count', message.order_id) ?? 0) + 1)
    if (message.payload.explode) throw new Error('boom')
    return { messages: [{ topic: 'inventoryCommands', envelope: event('reserve_inventory', { order_id: message.order_id, saga_id: message.saga_id, payload: {} }, ctx.now, ctx.newId()) }] }
  },
}

describe('the relay of a role in a group: outputs at once from memory, the changelog and offset after them', () => {
  let db: Db
  let bus: MemoryBus
  let runtime: Runtime
  let offset = 0n

  const on = (order: string, payload: Record<string, unknown> = {}): ConsumedRecord => ({
    topic: topics.orderEvents,
    partition: PART,
    offset: offset++,
    key: Buffer.from(order),
    value: Buffer.from(JSON.stringify(event('order.paid', { order_id: order, saga_id: order, payload }, 1_000))),
    headers: {},
    timestamp: 1_000n,
  })
  const commands = () => bus.published.filter((r) => r.topic === topics.inventoryCommands)
  const fileOutbox = () => db.$client.prepare('SELECT count(*) FROM outbox').pluck().get() as number

  let system: GroupedRuntime
  beforeEach(async () => {
    offset = 0n
    system = await groupedRuntime(counter, PART)
    ;({ db, bus, runtime } = system)
  })
  afterEach(() => system.close())

  it('given a record of an owned partition, then its rows never reach the file, and it is published and committed all the same', async () => {
    const order = randomUUID()
    expect(runtime.handleRecord(on(order))).toBe('processed')
    expect(fileOutbox()).toBe(0)
    expect(runtime.pendingOutbox()).toBeGreaterThan(0)
    await runtime.drain(2_000)
    expect(commands()).toHaveLength(1)
    expect(bus.writers.get(PART)!.commits.at(-1)!.nextOffset).toBe(offset)
    expect(runtime.pendingOutbox()).toBe(0)
  })

  it('given a batch where one record throws, then its rows are dropped with its savepoint and only the others go out', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    expect(runtime.handleRecords([on(a), on(b, { explode: true }), on(c)])).toEqual(['processed', 'dead-lettered', 'processed'])
    await runtime.drain(2_000)
    expect(commands().map((r) => r.key).sort()).toEqual([a, c].sort())
    expect(bus.published.filter((r) => r.topic === topics.dlq)).toHaveLength(1)
    const committed = bus.writers.get(PART)!.commits.flatMap((x) => x.records.map((r) => r.key))
    expect(committed).not.toContain(`s|count|${b}`)
    expect(committed).toContain(`s|count|${a}`)
  })

  it('given a batch the database cannot commit, then nothing of it is queued, then or with the next batch', async () => {
    const [a, b] = [randomUUID(), randomUUID()]
    expect(() => runtime.handleRecords([on(a), on(b, { ioerror: true })])).toThrow(/disk I\/O/)
    expect(runtime.pendingOutbox()).toBe(0)
    // The next batch that commits carries its own rows only.
    const c = randomUUID()
    expect(runtime.handleRecord(on(c))).toBe('processed')
    await runtime.drain(2_000)
    expect(commands().map((r) => r.key)).toEqual([c])
    expect(bus.writers.get(PART)!.commits.flatMap((x) => x.records.map((r) => r.key))).not.toContain(`s|count|${a}`)
  })

  it('given one key written several times between two commits, then the commit carries its last value only', async () => {
    const order = randomUUID()
    runtime.handleRecords([on(order), on(order), on(order)])
    await runtime.drain(2_000)
    const records = bus.writers.get(PART)!.commits.flatMap((x) => x.records).filter((r) => r.key === `s|count|${order}`)
    expect(records.map((r) => r.value)).toEqual(['3'])
    expect(commands()).toHaveLength(3)
  })

  it('given the partition revoked before its rows went out, then they are dropped with it: the next owner handles its records again', async () => {
    bus.failNext = 1
    runtime.handleRecord(on(randomUUID()))
    await runtime.relay()
    expect(commands()).toEqual([])
    bus.revoke([PART])
    expect(runtime.pendingOutbox()).toBe(0)
    await runtime.relay()
    expect(bus.published).toEqual([])
  })
})
