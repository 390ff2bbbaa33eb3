import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import { event } from '../../src/envelope.js'
import type { ConsumedRecord, ProducedRecord } from '../../src/kafka/port.js'
import type { RuntimeObserver } from '../../src/observe/observer.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { topicNames } from '../../src/topics.js'
import { MemoryBus } from '../runtime/memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const topics = topicNames('', orderSaga)
const PARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

/** order.created → a command and a timer; the timer's message → a second command. */
const role: RoleHandler = {
  name: 'orchestrator',
  consumes: ['orderEvents'],
  handle(message, _store, ctx) {
    const ids = { order_id: message.order_id, saga_id: message.saga_id }
    if (message.type === 'order.created') {
      return {
        messages: [{ topic: 'inventoryCommands', envelope: event('reserve_inventory', { ...ids, payload: { attempt: 1 } }, ctx.now, ctx.newId()) }],
        timer: { dueAt: ctx.now, message: event('saga.retry-due', { ...ids, payload: {} }, ctx.now, ctx.newId()) },
      }
    }
    if (message.type === 'saga.retry-due') return { messages: [{ topic: 'inventoryCommands', envelope: event('reserve_inventory', { ...ids, payload: { attempt: 2 } }, ctx.now, ctx.newId()) }], timer: null }
    return {}
  },
}

let offset = 0n
function record(value: string, headers: Record<string, string> = {}): ConsumedRecord {
  return { topic: topics.orderEvents, partition: 0, offset: offset++, key: null, value: Buffer.from(value), headers, timestamp: 0n }
}

describe('runtime observer hook (real SQLite file)', () => {
  let dir: string
  let db: Db
  let bus: MemoryBus
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-observer-'))
    db = openDatabase(path.join(dir, 'orchestrator.db'))
    bus = new MemoryBus()
  })
  afterEach(() => {
    db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const created = () => JSON.stringify(event('order.created', { order_id: randomUUID(), saga_id: randomUUID(), payload: {} }, 0))

  it('without an observer, a traceparent is copied to every message written, and through the timer to the retry', async () => {
    const runtime = new Runtime({ role, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g' })
    runtime.handleRecord(record(created(), { traceparent: PARENT, other: 'not carried' }))
    expect(runtime.fireDueTimers()).toBe(1)
    await runtime.drain()
    const commands = bus.published.filter((r) => r.topic === topics.inventoryCommands)
    expect(commands.map((r) => r.headers)).toEqual([{ traceparent: PARENT }, { traceparent: PARENT }])
  })

  it('a message without trace context writes messages without headers', async () => {
    const runtime = new Runtime({ role, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g' })
    runtime.handleRecord(record(created()))
    await runtime.drain()
    expect(bus.published.filter((r) => r.topic === topics.inventoryCommands).map((r) => r.headers)).toEqual([undefined])
  })

  it('the observer hears of each handling (type, outcome) and each send, and its headers are what the messages carry', async () => {
    const heard: string[] = []
    const sent: ProducedRecord[][] = []
    const observer: RuntimeObserver = {
      handling: ({ record: r, trace }) => ({
        headers: { traceparent: `child of ${trace?.traceparent ?? 'none'}` },
        end: (outcome, type) => heard.push(`${r ? 'record' : 'timer'} ${type ?? '?'} ${outcome}`),
      }),
      sending: (records) => {
        const batch = records.map((r) => ({ ...r }))
        return (error) => {
          if (!error) sent.push(batch)
        }
      },
    }
    const runtime = new Runtime({ role, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g', observer })
    const value = created()
    runtime.handleRecord(record(value, { traceparent: PARENT }))
    runtime.handleRecord(record(value, { traceparent: PARENT }))
    runtime.handleRecord(record('{not json'))
    runtime.fireDueTimers()
    await runtime.drain()
    expect(heard).toEqual(['record order.created processed', 'record order.created duplicate', 'record ? dead-lettered', 'timer saga.retry-due processed'])
    const commands = bus.published.filter((r) => r.topic === topics.inventoryCommands)
    // The timer kept the context its handling was given, and the retry's handling named its own below it.
    expect(commands.map((r) => r.headers?.traceparent)).toEqual([`child of ${PARENT}`, `child of child of ${PARENT}`])
    expect(sent.flat().length).toBe(bus.published.length)
  })
})
