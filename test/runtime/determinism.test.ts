import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import fc from 'fast-check'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import type { Message } from '../../src/envelope.js'
import type { ConsumedRecord } from '../../src/kafka/port.js'
import { DEFAULT_ORDER_LIMITS } from '../../src/order-schema.js'
import { derivedRandom } from '../../src/runtime/ids.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { orchestratorRole } from '../../src/services/orchestrator/role.js'
import { inventorySpec, participantRole, paymentSpec } from '../../src/services/participant.js'
import { topicNames, type TopicKey } from '../../src/topics.js'
import { flowSaga, scenarios, simulateOrder } from '../ops/saga-logs.js'
import type { Saga } from '../../src/saga/define.js'
import { MemoryBus } from './memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

// A new owner, a zombie woken late and a replay all handle a record again, from the state that
// the changelog (or the local file) holds. The messages they write must be the very ones written the
// first time — same message_ids, same bodies — or downstream dedupe by message_id would keep one copy
// of two different things. So nothing a decision sees may come from the wall clock or Math.random.

const topics = topicNames('', orderSaga)
const policy = { maxAttempts: 3, minDelayMs: 200, maxDelayMs: 5000, stepTimeoutMs: 4000, maxCompensationAttempts: 3 }
const roles: Record<string, { role: () => RoleHandler; topic: TopicKey; saga?: Saga }> = {
  orchestrator: { role: () => orchestratorRole(orderSaga, policy, DEFAULT_ORDER_LIMITS), topic: 'orderEvents' },
  'orchestrator of a parallel stage and a wait': { role: () => orchestratorRole(flowSaga, policy, DEFAULT_ORDER_LIMITS), topic: 'orderEvents', saga: flowSaga },
  inventory: { role: () => participantRole(inventorySpec, { successRate: 0.5, allowChaos: true }), topic: 'inventoryCommands' },
  payment: { role: () => participantRole(paymentSpec, { successRate: 0.5, allowChaos: true }), topic: 'paymentCommands' },
}

const dirs: string[] = []
const dbs: Db[] = []
afterEach(() => {
  for (const db of dbs.splice(0)) db.$client.close()
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

function database(file?: string): { db: Db; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-determinism-'))
  dirs.push(dir)
  const target = path.join(dir, 'role.db')
  if (file) fs.copyFileSync(file, target)
  const db = openDatabase(target)
  dbs.push(db)
  return { db, file: target }
}

/** A runtime outside a group (no broker needed), on its own wall clock and its own Math.random. */
function runtime(role: RoleHandler, db: Db, wallClock: number | (() => number)): Runtime {
  const clock = typeof wallClock === 'number' ? () => wallClock : wallClock
  return new Runtime({ role, db, bus: new MemoryBus(), topics, log: pino({ level: 'silent' }), groupId: 'g', clock })
}

/** What the runtime has queued to publish, in order: the bytes downstream would see. */
function outbox(db: Db, afterId = 0): { topic: string; key: string; value: string | null }[] {
  return db.$client.prepare('SELECT topic, msg_key AS key, value FROM outbox WHERE id > ? ORDER BY id').all(afterId) as { topic: string; key: string; value: string | null }[]
}

const lastId = (db: Db): number => db.$client.prepare('SELECT COALESCE(MAX(id), 0) FROM outbox').pluck().get() as number

function asRecord(message: Message, topic: string, offset: number, timestamp: bigint): ConsumedRecord {
  const { type: _type, ...envelope } = message
  return { topic, partition: 0, offset: BigInt(offset), key: Buffer.from(message.order_id), value: Buffer.from(JSON.stringify(envelope)), headers: {}, timestamp }
}

/** The records of the real saga's logs that a role consumes, with timestamps a second apart. */
function inputsOf(messages: Message[], topic: TopicKey): ConsumedRecord[] {
  const mine = messages.filter((m) => (topic === 'orderEvents' ? m.event_type !== undefined : commandsOf(topic).includes(m.type)))
  return mine.map((m, i) => asRecord(m, topics[topic], i, 1_700_000_000_000n + BigInt(i) * 1000n))
}

function commandsOf(topic: TopicKey): string[] {
  const spec = topic === 'inventoryCommands' ? inventorySpec : paymentSpec
  return [spec.act.command, spec.undo.command]
}

describe('handling the same input from the same state gives the same messages', () => {
  it('derivedRandom: the same seed draws the same sequence, another seed another one', () => {
    const a = derivedRandom('m-1')
    const b = derivedRandom('m-1')
    const c = derivedRandom('m-2')
    const drawsA = [a(), a(), a()]
    expect([b(), b(), b()]).toEqual(drawsA)
    expect([c(), c(), c()]).not.toEqual(drawsA)
    for (const x of drawsA) expect(x >= 0 && x < 1).toBe(true)
  })

  for (const [name, { role, topic, saga }] of Object.entries(roles)) {
    it(`${name}: given a state and the next input, when two instances with different wall clocks and Math.random handle it, then their messages are identical, ids and bodies`, () => {
      fc.assert(
        fc.property(scenarios, fc.nat({ max: 40 }), (scenario, cut) => {
          const inputs = inputsOf(simulateOrder(0, scenario, saga).messages, topic)
          fc.pre(inputs.length > 0)
          const split = cut % inputs.length
          // The state both start from: what the first owner had handled before it lost the partition.
          const first = database()
          const before = runtime(role(), first.db, 1_000)
          for (const record of inputs.slice(0, split)) before.handleRecord(record)
          const seenUpTo = lastId(first.db)
          first.db.$client.pragma('wal_checkpoint(TRUNCATE)')
          const copy = database(first.file)

          const realRandom = Math.random
          try {
            const a = runtime(role(), first.db, 5_000_000)
            Math.random = () => 0.01
            for (const record of inputs.slice(split)) a.handleRecord(record)
            a.fireDueTimers()
            const b = runtime(role(), copy.db, 9_000_000_000)
            Math.random = () => 0.99
            for (const record of inputs.slice(split)) b.handleRecord(record)
            b.fireDueTimers()
          } finally {
            Math.random = realRandom
          }
          const fromA = outbox(first.db, seenUpTo)
          const fromB = outbox(copy.db, seenUpTo)
          expect(fromB).toEqual(fromA)
        }),
        { numRuns: 30 },
      )
    }, 60_000)
  }

  it('given a step\'s timeout, when it and its retry fire at different wall-clock times, then the retried command is the same: its time is the timer\'s due time', () => {
    const orchestrator = roles.orchestrator!
    // Payment fails retryably once: the saga schedules a retry timer.
    const scenario = { schedule: [], luck: [], inventoryRate: 1, paymentRate: 1, stall: 'paymentCommands' as const, compensationAttempts: 3 }
    const inputs = inputsOf(simulateOrder(0, scenario).messages, 'orderEvents').slice(0, 2)
    const first = database()
    const rt = runtime(orchestrator.role(), first.db, 1_000)
    for (const record of inputs) rt.handleRecord(record)
    const timers = first.db.$client.prepare('SELECT count(*) FROM timers').pluck().get() as number
    expect(timers).toBe(1)
    const seenUpTo = lastId(first.db)
    first.db.$client.pragma('wal_checkpoint(TRUNCATE)')
    const copy = database(first.file)
    // The step times out, which schedules the retry; the retry then fires and sends the command again.
    for (const [db, start] of [[first.db, 10 ** 13], [copy.db, 2 * 10 ** 13]] as const) {
      let wall = start
      const rt2 = runtime(orchestrator.role(), db, () => wall)
      expect(rt2.fireDueTimers()).toBe(1)
      wall += 60_000
      expect(rt2.fireDueTimers()).toBe(1)
    }
    const fired = outbox(first.db, seenUpTo)
    expect(fired.length).toBeGreaterThan(0)
    expect(outbox(copy.db, seenUpTo)).toEqual(fired)
  })
})
