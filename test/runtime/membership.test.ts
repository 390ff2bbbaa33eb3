import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import { BrokerLostError } from '../../src/kafka/port.js'
import type { ConnectionEvent } from '../../src/runtime/membership.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { topicNames } from '../../src/topics.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import { MemoryBus } from './memory-bus.js'

const topics = topicNames('', orderSaga)
const quiet: RoleHandler = { name: 'orchestrator', consumes: ['orderEvents'], handle: () => ({}) }

async function until<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('membership: the broker lost and found again, in place or by joining again', () => {
  let dir: string
  let db: Db
  let bus: MemoryBus
  let events: ConnectionEvent[]
  let fatal: Error[]
  let runtime: Runtime

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-membership-'))
    db = openDatabase(path.join(dir, 'orchestrator.db'))
    bus = new MemoryBus()
    events = []
    fatal = []
    runtime = new Runtime({ role: quiet, db, bus, topics, log: pino({ level: 'silent' }), groupId: 'g', brokerLostAfterMs: 300, onConnection: (e) => void events.push(e), onFatal: (e) => void fatal.push(e) })
    await runtime.start()
    await bus.assign([0, 3])
  })
  afterEach(async () => {
    vi.useRealTimers()
    await runtime.stop()
    db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('given a member that owns partitions, then its consumer retries in place within the deadline', () => {
    expect(bus.subscription!.retryWithinMs).toBe(300)
  })

  it('given a member that owns partitions, when its requests fail and are answered again in place, then it keeps them, joins nothing, and says lost then back', async () => {
    // The deadline's timer runs on a clock the test moves past it: once back, it must not fire.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    bus.subscription!.onRetry!('fetch')
    bus.subscription!.onConnection!({ kind: 'lost', reason: "the consumer's fetch requests fail; retried in place" })
    bus.subscription!.onConnection!({ kind: 'back' })

    expect(runtime.ownedPartitions()).toEqual([0, 3])
    expect(bus.subscribed).toBe(1)
    expect(events.map((e) => e.kind)).toEqual(['retry', 'lost', 'back'])
    expect(events[2]).toMatchObject({ kind: 'back', rejoined: false })
    vi.advanceTimersByTime(1_000)
    expect(fatal).toEqual([])
  })

  it('given requests that keep failing in place, when the deadline passes, then the role ends with the one sentence', async () => {
    bus.subscription!.onConnection!({ kind: 'lost', reason: 'no answer' })
    const [error] = await until(() => fatal.length > 0 && fatal, 'the role to end')
    expect(error).toBeInstanceOf(BrokerLostError)
    expect(error!.message).toMatch(/^the Kafka broker has been unreachable for \d+ s, longer than SAGA_BROKER_LOST_AFTER \(0 s\)$/)
  })

  it('given requests failing in place, when the consumer gives up, then the member drops its partitions, joins again, and the time away counts from the first failure', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const t0 = Date.now()
    bus.subscription!.onConnection!({ kind: 'lost', reason: 'no answer' })
    vi.setSystemTime(t0 + 100)
    bus.subscription!.onError(new Error('fetch failed 13 times'))

    await until(() => events.some((e) => e.kind === 'back'), 'the member to be back')
    expect(bus.subscribed).toBe(2)
    expect(runtime.ownedPartitions()).toEqual([])
    expect(events.filter((e) => e.kind === 'lost')).toHaveLength(1)
    const back = events.find((e) => e.kind === 'back')!
    expect(back).toMatchObject({ rejoined: true })
    // From the first failure, 100 ms before the consumer gave up; not from the rejoin.
    expect((back as { downMs: number }).downMs).toBe(100)
    expect(fatal).toEqual([])
  })
})
