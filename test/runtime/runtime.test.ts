import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import { event } from '../../src/envelope.js'
import type { ConsumedRecord } from '../../src/kafka/port.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime, TIMER_HEADER } from '../../src/runtime/runtime.js'
import { topicNames } from '../../src/topics.js'
import { MemoryBus } from './memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const topics = topicNames('', orderSaga)
let offset = 0n

function record(value: unknown, topic = topics.orderEvents): ConsumedRecord {
  return { topic, partition: 0, offset: offset++, key: null, value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), headers: {}, timestamp: 0n }
}

/** Counts orders in its state and emits one command per order.created; throws on demand. */
const counter: RoleHandler = {
  name: 'orchestrator',
  consumes: ['orderEvents'],
  handle(message, store, ctx) {
    const seen = store.get<number>('count', message.order_id) ?? 0
    store.put('count', message.order_id, seen + 1)
    if (message.payload.explode) throw new Error('boom')
    if (message.type === 'order.created') {
      return { messages: [{ topic: 'inventoryCommands', envelope: event('reserve_inventory', { order_id: message.order_id, saga_id: message.saga_id, payload: { attempt: 1 } }, ctx.now, ctx.newId()) }] }
    }
    return {}
  },
}

describe('runtime: inbox, state and outbox in one transaction (real SQLite file)', () => {
  let dir: string
  let db: Db
  let bus: MemoryBus
  let runtime: Runtime

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-runtime-'))
    db = openDatabase(path.join(dir, 'orchestrator.db'))
    bus = new MemoryBus()
    runtime = new Runtime({ role: counter, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g' })
  })
  afterEach(() => {
    db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const count = (orderId: string) => runtime.read<number>('count', orderId)
  const outboxRows = () => db.$client.prepare('SELECT topic, value FROM outbox ORDER BY id').all() as { topic: string; value: string }[]

  it('given a message processed once, when the same message_id comes again, then one state change and one set of outgoing messages', async () => {
    const order = randomUUID()
    const created = event('order.created', { order_id: order, saga_id: randomUUID(), payload: {} }, Date.now())
    expect(runtime.handleRecord(record(created))).toBe('processed')
    expect(runtime.handleRecord(record(created))).toBe('duplicate')
    expect(count(order)).toBe(1)
    expect(outboxRows().map((r) => r.topic)).toEqual([topics.inventoryCommands])
    await runtime.drain()
    expect(bus.published).toHaveLength(1)
    expect(runtime.pendingOutbox()).toBe(0)
  })

  it('given a handler that throws, then nothing it wrote is committed, and the message goes to the dead-letter topic', () => {
    const order = randomUUID()
    const bad = event('order.created', { order_id: order, saga_id: randomUUID(), payload: { explode: true } }, Date.now())
    expect(runtime.handleRecord(record(bad))).toBe('dead-lettered')
    expect(count(order)).toBeUndefined()
    const rows = outboxRows()
    expect(rows.map((r) => r.topic)).toEqual([topics.dlq])
    expect(JSON.parse(rows[0]!.value)).toMatchObject({ reason: 'handler error: boom', role: 'orchestrator', source: { topic: topics.orderEvents } })
    // Its message_id was not marked processed: once fixed and replayed from the DLQ, it is handled.
    expect(db.$client.prepare('SELECT count(*) FROM processed_messages WHERE message_id = ?').pluck().get(bad.message_id)).toBe(0)
  })

  it.each([
    ['invalid JSON', '{"event_type": ', /invalid JSON/],
    ['a missing envelope field', { event_type: 'order.created', order_id: 'o', saga_id: 's', payload: {} }, /message_id/],
    ['no type at all', { order_id: 'o', saga_id: 's', message_id: 'm', payload: {} }, /neither "event_type" nor "command_type"/],
    ['a payload that is not an object', { event_type: 'x', order_id: 'o', saga_id: 's', message_id: 'm', payload: [1] }, /payload/],
    ['an oversize message', 'x'.repeat(300 * 1024), /oversize/],
  ])('given %s, then it is dead-lettered with its reason and the original bytes', (_kind, value, reason) => {
    const r = record(value)
    expect(runtime.handleRecord(r)).toBe('dead-lettered')
    const letter = JSON.parse(outboxRows()[0]!.value) as { reason: string; value_base64: string; source: { offset: string } }
    expect(letter.reason).toMatch(reason)
    expect(Buffer.from(letter.value_base64, 'base64').equals(r.value!)).toBe(true)
    expect(letter.source.offset).toBe(r.offset.toString())
    // The same record redelivered (a crash before the offset commit) is not dead-lettered twice.
    expect(runtime.handleRecord(r)).toBe('duplicate')
  })

  it('given the broker refuses a publish, then the outbox keeps the rows and the next relay sends them in order', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()]
    bus.failNext = Number.POSITIVE_INFINITY
    for (const id of ids) runtime.handleRecord(record(event('order.created', { order_id: id, saga_id: id, payload: {} }, Date.now())))
    await runtime.relay()
    expect(runtime.pendingOutbox()).toBe(3)
    expect(bus.published).toEqual([])
    bus.failNext = 0
    await runtime.drain()
    expect(bus.published.map((p) => p.key)).toEqual(ids)
    expect(runtime.pendingOutbox()).toBe(0)
  })

  it('given records handled together, when one of them throws, then it alone rolls back and is dead-lettered, and the others stand', () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const created = (order: string, payload = {}) => record(event('order.created', { order_id: order, saga_id: order, payload }, Date.now()))
    const first = created(a)
    const batch = [first, created(b, { explode: true }), created(c), { ...first, offset: offset++ }]
    expect(runtime.handleRecords(batch)).toEqual(['processed', 'dead-lettered', 'processed', 'duplicate'])
    expect([count(a), count(b), count(c)]).toEqual([1, undefined, 1])
    expect(outboxRows().map((r) => r.topic)).toEqual([topics.inventoryCommands, topics.dlq, topics.inventoryCommands])
  })

  it('given a batch, when the database fails in a way that is not the message\'s fault, then nothing of the batch is committed', () => {
    const [a, b] = [randomUUID(), randomUUID()]
    const created = (order: string) => record(event('order.created', { order_id: order, saga_id: order, payload: {} }, Date.now()))
    const flaky: RoleHandler = {
      ...counter,
      handle(message, store, ctx) {
        if (message.order_id === b) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
        return counter.handle(message, store, ctx)
      },
    }
    const rt = new Runtime({ role: flaky, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g' })
    expect(() => rt.handleRecords([created(a), created(b)])).toThrow(/disk I\/O/)
    expect(rt.read<number>('count', a)).toBeUndefined()
    expect(outboxRows()).toEqual([])
    expect(db.$client.prepare('SELECT count(*) FROM processed_messages').pluck().get()).toBe(0)
  })

  it('given a timer that is due, then its message is handled once through the inbox and the timer is gone', () => {
    let now = 1_000
    const timed: RoleHandler = {
      ...counter,
      handle(message, store, ctx) {
        counter.handle(message, store, ctx)
        if (message.type === 'order.created') return { timer: { dueAt: ctx.now + 500, message: event('saga.retry-due', { order_id: message.order_id, saga_id: message.saga_id, payload: {} }, ctx.now, ctx.newId()) } }
        return {}
      },
    }
    const rt = new Runtime({ role: timed, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g', clock: () => now })
    const order = randomUUID()
    rt.handleRecord(record(event('order.created', { order_id: order, saga_id: order, payload: {} }, now)))
    expect(rt.fireDueTimers()).toBe(0)
    now += 500
    expect(rt.fireDueTimers()).toBe(1)
    expect(rt.fireDueTimers()).toBe(0)
    expect(rt.read<number>('count', order)).toBe(2)
  })
})

describe('runtime: state that follows its partition (changelog, restore, one commit per partition)', () => {
  const changelog = 'sagactl.orchestrator.changelog'
  let dir: string
  const dbs: Db[] = []
  let bus: MemoryBus
  let now = 1_000

  /** Retries its step after 500 ms once, then finishes: state, an outgoing command and a timer. */
  const saga: RoleHandler = {
    ...counter,
    handle(message, store, ctx) {
      const seen = store.get<number>('count', message.order_id) ?? 0
      store.put('count', message.order_id, seen + 1)
      if (message.type === 'order.created') {
        return { timer: { dueAt: ctx.now + 500, message: event('saga.retry-due', { order_id: message.order_id, saga_id: message.saga_id, payload: {} }, ctx.now, ctx.newId()) } }
      }
      return { messages: [{ topic: 'inventoryCommands', envelope: event('reserve_inventory', { order_id: message.order_id, saga_id: message.saga_id, payload: { attempt: 2 } }, ctx.now, ctx.newId()) }] }
    },
  }

  async function instance(name: string): Promise<{ runtime: Runtime; db: Db }> {
    const db = openDatabase(path.join(dir, name, 'orchestrator.db'))
    dbs.push(db)
    const runtime = new Runtime({ role: saga, db, bus, topics, changelog, log: pino({ level: 'silent' }), groupId: 'g', clock: () => now })
    await runtime.start()
    return { runtime, db }
  }

  function on(partition: number, value: unknown, offset: bigint): ConsumedRecord {
    return { topic: topics.orderEvents, partition, offset, key: null, value: Buffer.from(JSON.stringify(value)), headers: {}, timestamp: 0n }
  }

  async function settled(runtime: Runtime): Promise<void> {
    await runtime.drain(2_000)
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-runtime-'))
    bus = new MemoryBus()
    now = 1_000
  })
  afterEach(async () => {
    for (const db of dbs.splice(0)) db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('given an owned partition, when a record is handled, then its changelog records and its offset go out in one commit of that partition', async () => {
    const { runtime } = await instance('a')
    const [writer] = await bus.assign([3])
    const order = randomUUID()
    expect(runtime.handleRecord(on(3, event('order.created', { order_id: order, saga_id: order, payload: {} }, now), 41n))).toBe('processed')
    await settled(runtime)
    expect(writer!.commits).toHaveLength(1)
    const { records, nextOffset } = writer!.commits[0]!
    expect(nextOffset).toBe(42n)
    expect(records.every((r) => r.topic === changelog && r.partition === 3)).toBe(true)
    expect(records.map((r) => r.key).sort()).toEqual([`p|${order}`, `s|count|${order}`, `t|${order}`])
    await runtime.stop()
  })

  it('given a handled record, then its output goes out at once, and the changelog and offset commit only once that output is acknowledged', async () => {
    const { runtime } = await instance('a')
    const [writer] = await bus.assign([3])
    const order = randomUUID()
    bus.failNext = 1
    // The first record sends nothing; the second's command is refused by the broker once: the
    // partition commits the first, and nothing past the second until its command is acknowledged.
    runtime.handleRecord(on(3, event('order.created', { order_id: order, saga_id: order, payload: {} }, now), 41n))
    runtime.handleRecord(on(3, event('order.paid', { order_id: order, saga_id: order, payload: {} }, now), 42n))
    await runtime.relay(3)
    expect(writer!.commits.map((c) => c.nextOffset)).toEqual([42n])
    expect(writer!.commits[0]!.records.map((r) => r.value)).not.toContain('2')
    expect(runtime.pendingOutbox()).toBeGreaterThan(0)

    await settled(runtime)
    expect(writer!.commits.map((c) => c.nextOffset)).toEqual([42n, 43n])
    const command = bus.published.findIndex((r) => r.topic === topics.inventoryCommands)
    const itsState = bus.published.findIndex((r) => r.topic === changelog && r.value === '2')
    expect(command).toBeGreaterThanOrEqual(0)
    expect(command).toBeLessThan(itsState)
    await runtime.stop()
  })

  it('given records within the commit interval, then their outputs go at once and the partition commits them later in one transaction', async () => {
    const { runtime } = await instance('a')
    const [writer] = await bus.assign([3])
    const [a, b] = [randomUUID(), randomUUID()]
    runtime.handleRecord(on(3, event('order.paid', { order_id: a, saga_id: a, payload: {} }, now), 41n))
    runtime.handleRecord(on(3, event('order.paid', { order_id: b, saga_id: b, payload: {} }, now), 42n))
    await runtime.relay()
    expect(bus.published.filter((r) => r.topic === topics.inventoryCommands)).toHaveLength(2)
    expect(writer!.commits).toEqual([])
    await vi.waitFor(() => expect(writer!.commits.map((c) => c.nextOffset)).toEqual([43n]), { timeout: 2_000, interval: 20 })
    expect(writer!.commits[0]!.records.map((r) => r.key)).toEqual(expect.arrayContaining([`p|${a}`, `p|${b}`]))
    await runtime.stop()
  })

  it('given a partition not owned, when its record arrives, then it is left alone', async () => {
    const { runtime } = await instance('a')
    await bus.assign([0])
    const order = randomUUID()
    expect(runtime.handleRecord(on(1, event('order.created', { order_id: order, saga_id: order, payload: {} }, now), 0n))).toBe('not-owned')
    expect(runtime.read('count', order)).toBeUndefined()
    await runtime.stop()
  })

  it('given a partition moved to a new instance with an empty file, then its state, processed ids and timer come back from the changelog', async () => {
    const a = await instance('a')
    await bus.assign([2])
    const order = randomUUID()
    const created = event('order.created', { order_id: order, saga_id: order, payload: {} }, now)
    a.runtime.handleRecord(on(2, created, 0n))
    await settled(a.runtime)
    bus.revoke([2])
    expect(a.runtime.fireDueTimers()).toBe(0)

    const b = await instance('b')
    await bus.assign([2])
    expect(b.runtime.read<number>('count', order)).toBe(1)
    // The same message again: recognised, though this instance never handled it.
    expect(b.runtime.handleRecord(on(2, created, 0n))).toBe('duplicate')
    // The timer travelled too. Once due, its message goes to the partition of the input, and is acted on when read back.
    now += 500
    expect(b.runtime.fireDueTimers()).toBe(1)
    // On its way: not sent twice.
    expect(b.runtime.fireDueTimers()).toBe(0)
    const fired = bus.published.filter((r) => r.topic === topics.orderEvents)
    expect(fired).toHaveLength(1)
    expect(fired[0]!.partition).toBe(2)
    expect(fired[0]!.headers?.[TIMER_HEADER]).toBe(order)
    const readBack = (at: bigint): ConsumedRecord => ({ topic: topics.orderEvents, partition: 2, offset: at, key: Buffer.from(order), value: Buffer.from(fired[0]!.value as string), headers: fired[0]!.headers ?? {}, timestamp: BigInt(now + 5) })
    expect(b.runtime.handleRecord(readBack(1n))).toBe('processed')
    await settled(b.runtime)
    expect(b.runtime.read<number>('count', order)).toBe(2)
    expect(bus.published.filter((r) => r.topic === topics.inventoryCommands)).toHaveLength(1)
    // A second copy (a zombie's, or one sent again after a restore) is a duplicate, and the timer is gone.
    expect(b.runtime.handleRecord(readBack(2n))).toBe('duplicate')
    now += 10_000
    expect(b.runtime.fireDueTimers()).toBe(0)
    await Promise.all([a.runtime.stop(), b.runtime.stop()])
  })

  it('given an instance whose writer was fenced, then it drops the partition and publishes nothing more for it', async () => {
    const { runtime } = await instance('a')
    const [writer] = await bus.assign([5])
    writer!.fenced = true
    const order = randomUUID()
    runtime.handleRecord(on(5, event('order.created', { order_id: order, saga_id: order, payload: {} }, now), 7n))
    await runtime.relay(5)
    await new Promise((resolve) => setImmediate(resolve))
    expect(runtime.ownedPartitions()).toEqual([])
    expect(runtime.handleRecord(on(5, event('order.created', { order_id: randomUUID(), saga_id: order, payload: {} }, now), 8n))).toBe('not-owned')
    expect(writer!.commits).toEqual([])
    await runtime.stop()
  })

  it('given a file ahead of the changelog (handled, never committed), when the partition is assigned again, then the local copy is replaced by the changelog', async () => {
    const { runtime, db } = await instance('a')
    const [writer] = await bus.assign([1])
    writer!.fenced = true
    const order = randomUUID()
    runtime.handleRecord(on(1, event('order.created', { order_id: order, saga_id: order, payload: {} }, now), 0n))
    expect(runtime.read<number>('count', order)).toBe(1)
    await runtime.relay(1)
    await new Promise((resolve) => setImmediate(resolve))
    await bus.assign([1])
    expect(runtime.read<number>('count', order)).toBeUndefined()
    expect(db.$client.prepare('SELECT count(*) FROM outbox WHERE part = 1').pluck().get()).toBe(0)
    await runtime.stop()
  })
})

describe('runtime: the saga definition on every message, and outside work before the transaction', () => {
  let dir: string
  const dbs: Db[] = []

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-runtime-'))
  })
  afterEach(() => {
    for (const db of dbs.splice(0)) db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  function make(role: RoleHandler, bus = new MemoryBus(), definitions?: string[]): { runtime: Runtime; bus: MemoryBus; db: Db } {
    const db = openDatabase(path.join(dir, `${randomUUID()}.db`))
    dbs.push(db)
    const definition = definitions?.at(-1) ?? 'aaaaaaaaaaaa'
    return { runtime: new Runtime({ role, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g', definition, ...(definitions ? { definitions } : {}) }), bus, db }
  }

  it('given a role running definition A, then what it writes is stamped A, and a message stamped B is dead-lettered with why', async () => {
    const { runtime, bus } = make(counter)
    const order = randomUUID()
    const own = { ...event('order.created', { order_id: order, saga_id: randomUUID(), payload: {} }, Date.now()), saga_definition: 'aaaaaaaaaaaa' }
    const foreign = { ...event('order.created', { order_id: randomUUID(), saga_id: randomUUID(), payload: {} }, Date.now()), saga_definition: 'bbbbbbbbbbbb' }
    const unstamped = event('order.created', { order_id: randomUUID(), saga_id: randomUUID(), payload: {} }, Date.now())

    expect(runtime.handleRecords([record(own), record(foreign), record(unstamped)])).toEqual(['processed', 'dead-lettered', 'processed'])
    await runtime.drain()
    const commands = bus.published.filter((r) => r.topic === topics.inventoryCommands).map((r) => JSON.parse(String(r.value)) as { saga_definition?: string })
    expect(commands.map((c) => c.saga_definition)).toEqual(['aaaaaaaaaaaa', 'aaaaaaaaaaaa'])
    const letters = bus.published.filter((r) => r.topic === topics.dlq).map((r) => JSON.parse(String(r.value)) as { reason: string })
    expect(letters.map((l) => l.reason)).toEqual(['saga definition mismatch: this message was made under definition bbbbbbbbbbbb, orchestrator runs aaaaaaaaaaaa; give every role the same saga module (--saga), with every version still in flight'])
  })

  it('given a role running two versions (A, then B the newest), then a message of either is handled and what it causes keeps its version; an unstamped one gets B; one of C is dead-lettered naming both', async () => {
    const { runtime, bus } = make(counter, new MemoryBus(), ['aaaaaaaaaaaa', 'bbbbbbbbbbbb'])
    const stamped = (definition?: string) => ({ ...event('order.created', { order_id: randomUUID(), saga_id: randomUUID(), payload: {} }, Date.now()), ...(definition ? { saga_definition: definition } : {}) })
    expect(runtime.handleRecords([record(stamped('aaaaaaaaaaaa')), record(stamped('bbbbbbbbbbbb')), record(stamped()), record(stamped('cccccccccccc'))])).toEqual(['processed', 'processed', 'processed', 'dead-lettered'])
    await runtime.drain()
    const commands = bus.published.filter((r) => r.topic === topics.inventoryCommands).map((r) => JSON.parse(String(r.value)) as { saga_definition?: string })
    expect(commands.map((c) => c.saga_definition)).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'bbbbbbbbbbbb'])
    const letters = bus.published.filter((r) => r.topic === topics.dlq).map((r) => JSON.parse(String(r.value)) as { reason: string })
    expect(letters.map((l) => l.reason)).toEqual(['saga definition mismatch: this message was made under definition cccccccccccc, orchestrator runs aaaaaaaaaaaa, bbbbbbbbbbbb; give every role the same saga module (--saga), with every version still in flight'])
  })

  it('given a role that prepares, then each partition’s records are prepared and handled one at a time in order, partitions side by side, and a seen message is not prepared again', async () => {
    const log: string[] = []
    const gates = new Map<string, () => void>()
    const role: RoleHandler = {
      ...counter,
      async prepare(message) {
        log.push(`start ${String(message.payload.n)}`)
        await new Promise<void>((resolve) => gates.set(String(message.payload.n), resolve))
        log.push(`end ${String(message.payload.n)}`)
        return `work ${String(message.payload.n)}`
      },
      handle(message, store, ctx) {
        log.push(`handle ${String(message.payload.n)} with ${String(ctx.prepared)}`)
        return {}
      },
    }
    const { runtime, bus } = make(role)
    await runtime.start()
    await bus.assign([0, 1])
    const on = (partition: number, n: string, id = randomUUID()): ConsumedRecord => ({ ...record({ ...event('order.updated', { order_id: 'o', saga_id: 's', payload: { n } }, 0, id) }), partition })
    const repeated = randomUUID()
    bus.subscription!.handler(on(0, 'a1', repeated))
    bus.subscription!.handler(on(0, 'a2'))
    bus.subscription!.handler(on(1, 'b1'))
    bus.subscription!.handler(on(0, 'a1', repeated))

    await vi.waitFor(() => expect(log).toEqual(['start a1', 'start b1']))
    gates.get('b1')!()
    await vi.waitFor(() => expect(log).toContain('handle b1 with work b1'))
    expect(log).not.toContain('start a2')
    gates.get('a1')!()
    await vi.waitFor(() => expect(log).toContain('start a2'))
    gates.get('a2')!()
    await vi.waitFor(() => expect(log.filter((l) => l.startsWith('handle'))).toHaveLength(3))
    expect(log).toEqual(['start a1', 'start b1', 'end b1', 'handle b1 with work b1', 'end a1', 'handle a1 with work a1', 'start a2', 'end a2', 'handle a2 with work a2'])
    await runtime.stop()
  })

  it('given a partition revoked while its work is outside, then neither that record nor those behind it are handled; they come again from the committed offset', async () => {
    const handled: string[] = []
    const started: { n: string; go: () => void }[] = []
    const role: RoleHandler = {
      ...counter,
      async prepare(message) {
        await new Promise<void>((resolve) => started.push({ n: String(message.payload.n), go: resolve }))
        return 'done'
      },
      handle(message) {
        handled.push(String(message.payload.n))
        return {}
      },
    }
    const { runtime, bus } = make(role)
    await runtime.start()
    await bus.assign([0])
    const on = (n: string, id: string): ConsumedRecord => ({ ...record(event('order.updated', { order_id: 'o', saga_id: 's', payload: { n } }, 0, id)), partition: 0 })
    const [id1, id2] = [randomUUID(), randomUUID()]
    void bus.subscription!.handler(on('r1', id1))
    void bus.subscription!.handler(on('r2', id2))
    await vi.waitFor(() => expect(started.map((s) => s.n)).toEqual(['r1']))
    bus.revoke([0])
    await bus.assign([0])
    started[0]!.go()
    // Fetched again from the committed offset, in order, by the partition's new lane.
    void bus.subscription!.handler(on('r1', id1))
    void bus.subscription!.handler(on('r2', id2))
    await vi.waitFor(() => expect(started.map((s) => s.n)).toEqual(['r1', 'r1']))
    started[1]!.go()
    await vi.waitFor(() => expect(started.map((s) => s.n)).toEqual(['r1', 'r1', 'r2']))
    started[2]!.go()
    await vi.waitFor(() => expect(handled).toEqual(['r1', 'r2']))
    await runtime.stop()
  })

  it('given a prepare that throws, then the record is dead-lettered with the error and the partition goes on', async () => {
    const handled: string[] = []
    const role: RoleHandler = {
      ...counter,
      async prepare(message) {
        if (message.payload.n === 'bad') throw new Error('service said no')
        return 'ok'
      },
      handle(message) {
        handled.push(String(message.payload.n))
        return {}
      },
    }
    const { runtime, bus } = make(role)
    await runtime.start()
    await bus.assign([0])
    for (const n of ['bad', 'good']) bus.subscription!.handler({ ...record(event('order.updated', { order_id: 'o', saga_id: 's', payload: { n } }, 0)), partition: 0 })
    await vi.waitFor(() => expect(handled).toEqual(['good']))
    await runtime.drain()
    const letters = bus.published.filter((r) => r.topic === topics.dlq).map((r) => JSON.parse(String(r.value)) as { reason: string })
    expect(letters.map((l) => l.reason)).toEqual(['handler error: service said no'])
    await runtime.stop()
  })
})
