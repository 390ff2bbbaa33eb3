import { randomUUID } from 'node:crypto'
import path from 'node:path'

import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openDatabase } from '../../src/db/database.js'
import { event } from '../../src/envelope.js'
import type { ConsumedRecord, ProducedRecord } from '../../src/kafka/port.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime, TIMER_HEADER } from '../../src/runtime/runtime.js'
import { topicNames } from '../../src/topics.js'
import { groupedRuntime, type GroupedRuntime } from './grouped-runtime.js'
import { MemoryBus } from './memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const topics = topicNames('', orderSaga)
const PART = 1

/** Sets a timer on order.created; its message, when it comes back, throws. */
const brokenTimer: RoleHandler = {
  name: 'orchestrator',
  consumes: ['orderEvents'],
  handle(message, store, ctx) {
    if (message.type === 'saga.retry-due') throw new Error('cannot handle the timer')
    store.put('seen', message.order_id, true)
    return { timer: { dueAt: ctx.now + 100, message: event('saga.retry-due', { order_id: message.order_id, saga_id: message.saga_id, payload: {} }, ctx.now, ctx.newId()) } }
  },
}

describe('timers of a role in a group: through the log, and never fired forever', () => {
  let dir: string
  let bus: MemoryBus
  let runtime: Runtime
  let now = 10_000

  const readBack = (r: ProducedRecord, offset: bigint): ConsumedRecord => ({ topic: r.topic, partition: r.partition!, offset, key: Buffer.from(r.key), value: Buffer.from(r.value as string), headers: r.headers ?? {}, timestamp: BigInt(now) })

  let system: GroupedRuntime
  beforeEach(async () => {
    now = 10_000
    system = await groupedRuntime(brokenTimer, PART, () => now)
    ;({ dir, bus, runtime } = system)
  })
  afterEach(() => system.close())

  it('given a timer whose message fails when read back, then that message is dead-lettered once and the timer fires no more', async () => {
    const order = randomUUID()
    const created = event('order.created', { order_id: order, saga_id: order, payload: {} }, now)
    runtime.handleRecord({ topic: topics.orderEvents, partition: PART, offset: 0n, key: Buffer.from(order), value: Buffer.from(JSON.stringify(created)), headers: {}, timestamp: BigInt(now) })
    now += 100
    expect(runtime.fireDueTimers()).toBe(1)
    const fired = bus.published.filter((r) => r.headers?.[TIMER_HEADER] === order)
    expect(fired).toHaveLength(1)
    expect(runtime.handleRecord(readBack(fired[0]!, 1n))).toBe('dead-lettered')
    now += 10_000
    expect(runtime.fireDueTimers()).toBe(0)
    await runtime.drain(2_000)
    expect(bus.published.filter((r) => r.topic === topics.dlq)).toHaveLength(1)
    expect(bus.published.filter((r) => r.headers?.[TIMER_HEADER] === order)).toHaveLength(1)
  })

  it('given the same poison record handled twice (a crash before its commit), then both letters carry one dead_letter_id', async () => {
    const poison: ConsumedRecord = { topic: topics.orderEvents, partition: PART, offset: 7n, key: null, value: Buffer.from('{"event_type": '), headers: {}, timestamp: BigInt(now) }
    expect(runtime.handleRecord(poison)).toBe('dead-lettered')
    await runtime.drain(2_000)
    // A second instance, with its own empty file, handles the same record again.
    const other = new Runtime({ role: brokenTimer, db: openDatabase(path.join(dir, 'other.db')), bus: new MemoryBus(), topics, log: pino({ level: 'silent' }), groupId: 'g' })
    expect(other.handleRecord(poison)).toBe('dead-lettered')
    const otherDb = openDatabase(path.join(dir, 'other.db'))
    const [mine] = bus.published.filter((r) => r.topic === topics.dlq).map((r) => JSON.parse(r.value as string) as { dead_letter_id: string })
    const [theirs] = (otherDb.$client.prepare('SELECT value FROM outbox WHERE topic = ?').pluck().all(topics.dlq) as string[]).map((v) => JSON.parse(v) as { dead_letter_id: string })
    otherDb.$client.close()
    expect(mine!.dead_letter_id).toBe(theirs!.dead_letter_id)
  })
})
