// Client behaviour probes for @platformatic/kafka 1.35 (issue 17):
//  A. does a waiting fetch (read_uncommitted, maxWaitTime 500, minBytes 1) return as soon as a record lands?
//  B. read_committed, records in a transaction: is the waiting fetch woken when the commit marker lands?
//  C. read_committed, records from a plain idempotent producer: woken at once?
//  D. idle CPU (this process and the broker) of a consumer polling 6 empty partitions with
//     maxWaitTime 10 / minBytes 64 KiB (today's role consumers) versus maxWaitTime 500 / minBytes 1.
// Usage: nice -n 5 node probe.mjs [--idle-seconds 10] [--json out.json]
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

import { Consumer, FetchIsolationLevels, Producer, ProduceAcks } from '@platformatic/kafka'

import { brokerInfo, createTopics, deleteTopics, procCpuMs, selfCpuMs, sleep, summary } from './lib.mjs'

const args = process.argv.slice(2)
const arg = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt }
const IDLE_S = Number(arg('idle-seconds', 10))
const SAMPLES = Number(arg('samples', 12))
const { brokers, pid: brokerPid } = brokerInfo()
const run = randomUUID().slice(0, 8)
const results = {}
const UNKNOWN_PRODUCER = { producerId: -1n, producerEpoch: -1 }

async function reader(topic, isolationLevel, maxWaitTime, minBytes) {
  const consumer = new Consumer({ clientId: 'probe-reader', bootstrapBrokers: [brokers], groupId: `probe-${randomUUID()}`, autocommit: false, isolationLevel, maxWaitTime, minBytes })
  const stream = await consumer.consume({ topics: [topic], mode: 'latest' })
  let fetches = 0
  stream.on('fetch', () => fetches++)
  return { consumer, stream, fetches: () => fetches }
}

async function wakeTest(name, { isolationLevel, transactional }) {
  const topic = `probe-${name}-${run}`
  await createTopics(brokers, [{ name: topic, partitions: 1 }])
  const r = await reader(topic, isolationLevel, 500, 1)
  const producer = new Producer({ clientId: 'probe-producer', bootstrapBrokers: [brokers], idempotent: true, acks: ProduceAcks.ALL, ...(transactional ? { transactionalId: `probe-${name}-${run}` } : {}) })
  // Warm up: connections, metadata, producer id; and let the reader's first fetches settle.
  const pending = new Map()
  r.stream.on('data', (m) => { const id = m.key.toString(); const p = pending.get(id); if (p) { p.seen = performance.now(); pending.delete(id) ; p.resolve() } })
  const sendOne = async (id) => {
    const t = { start: performance.now() }
    const seen = new Promise((resolve) => pending.set(id, Object.assign(t, { resolve })))
    if (transactional) {
      const tx = await producer.beginTransaction(UNKNOWN_PRODUCER)
      await tx.send({ messages: [{ topic, key: Buffer.from(id), value: Buffer.from('x') }] })
      t.acked = performance.now()
      await tx.commit()
      t.committed = performance.now()
    } else {
      await producer.send({ messages: [{ topic, key: Buffer.from(id), value: Buffer.from('x') }] })
      t.acked = performance.now()
    }
    await Promise.race([seen, sleep(3000)])
    return t
  }
  await sendOne('warmup')
  await sleep(1000)
  const afterAck = []
  const afterCommit = []
  const total = []
  const f0 = r.fetches()
  for (let i = 0; i < SAMPLES; i++) {
    await sleep(150 + Math.random() * 500) // random phase against the 500 ms wait
    const t = await sendOne(`k${i}`)
    const seen = t.seen ?? NaN
    total.push(seen - t.start)
    afterAck.push(seen - t.acked)
    if (transactional) afterCommit.push(seen - t.committed)
  }
  const fetches = r.fetches() - f0
  await r.stream.close().catch(() => {})
  await r.consumer.close(true).catch(() => {})
  await producer.close().catch(() => {})
  await deleteTopics(brokers, [topic])
  const out = {
    send_to_seen_ms: summary(total),
    ack_to_seen_ms: summary(afterAck),
    ...(transactional ? { commit_to_seen_ms: summary(afterCommit) } : {}),
    fetches_per_record: fetches / SAMPLES,
  }
  console.log(name, JSON.stringify(out))
  results[name] = out
}

async function idleTest(name, maxWaitTime, minBytes) {
  const topic = `probe-idle-${name}-${run}`
  await createTopics(brokers, [{ name: topic, partitions: 6 }])
  let r
  if (maxWaitTime !== null) {
    r = await reader(topic, FetchIsolationLevels.READ_COMMITTED, maxWaitTime, minBytes)
    r.stream.on('data', () => {})
  }
  await sleep(2000)
  const n0 = selfCpuMs(); const b0 = procCpuMs(brokerPid); const t0 = performance.now(); const f0 = r?.fetches() ?? 0
  await sleep(IDLE_S * 1000)
  const wall = performance.now() - t0
  const out = {
    node_pct_of_core: (100 * (selfCpuMs() - n0)) / wall,
    broker_pct_of_core: (100 * (procCpuMs(brokerPid) - b0)) / wall,
    fetches_per_s: r ? ((r.fetches() - f0) * 1000) / wall : 0,
  }
  if (r) {
    await r.stream.close().catch(() => {})
    await r.consumer.close(true).catch(() => {})
  }
  await deleteTopics(brokers, [topic])
  console.log(`idle ${name}`, JSON.stringify(out))
  results[`idle_${name}`] = out
}

await wakeTest('uncommitted_wait500', { isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED, transactional: false })
await wakeTest('committed_wait500_txn', { isolationLevel: FetchIsolationLevels.READ_COMMITTED, transactional: true })
await wakeTest('committed_wait500_plain', { isolationLevel: FetchIsolationLevels.READ_COMMITTED, transactional: false })
await idleTest('no_consumer', null, null)
await idleTest('wait10_min64k', 10, 65536)
await idleTest('wait500_min1', 500, 1)
await idleTest('no_consumer_again', null, null)

const out = arg('json')
if (out) writeFileSync(out, JSON.stringify(results, null, 2))
process.exit(0)
