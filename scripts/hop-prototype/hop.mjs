// One saga hop, three commit paths (issue 17). A relay consumes IN (6 partitions) in a group and,
// for every record, writes one record to OUT and one to the compacted CHANGELOG. The driver (this
// process) produces IN at a fixed rate and then in a burst, and a reader of OUT measures the hop:
// from just before the driver's send of an IN record to the moment the reader is handed its OUT record
// (performance.now() in one process). The relay runs in a child process so its CPU is its own.
//
//   --variant 0   today: one transaction per input-partition batch (a transactional producer per
//                 partition: records [+ offset at most once a second] + commit); readers read_committed,
//                 fetch maxWait 10 ms / minBytes 64 KiB (sagactl's role consumers).
//   --variant a   no transaction: one idempotent producer sends output + changelog at once, offsets
//                 committed by the consumer every --commit-ms (default 100); readers read_uncommitted,
//                 maxWait 500 / minBytes 1.
//   --variant b   Kafka Streams: one transactional producer for the instance, records sent into the
//                 open transaction at once, offsets of every progressed partition + commit every
//                 --commit-ms (10 or 100); readers read_committed, maxWait 500 / minBytes 1.
//   --relay-wait/--relay-min-bytes/--reader-wait/--reader-min-bytes override the fetch settings.
//
// Usage: nice -n 5 node hop.mjs --variant b --commit-ms 10 [--rate 200 --seconds 20 --burst 6000 --idle-seconds 8 --json out/x.json]
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'

import { Consumer, FetchIsolationLevels, Producer, ProduceAcks } from '@platformatic/kafka'

import { brokerInfo, createTopics, deleteTopics, procCpuMs, selfCpuMs, sleep, summary } from './lib.mjs'

const args = process.argv.slice(2)
const arg = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt }
const VARIANT = arg('variant', 'a')
const COMMIT_MS = Number(arg('commit-ms', VARIANT === 'b' ? 100 : 100))
const OFFSET_EVERY_MS = Number(arg('offset-every-ms', 1000)) // variant 0: sagactl sends the offset at most once a second
const PARTITIONS = 6
const UNKNOWN_PRODUCER = { producerId: -1n, producerEpoch: -1 }
const MAX_SEND = 2000

const FETCH = {
  0: { isolationLevel: FetchIsolationLevels.READ_COMMITTED, maxWaitTime: 10, minBytes: 65536 },
  a: { isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED, maxWaitTime: 500, minBytes: 1 },
  b: { isolationLevel: FetchIsolationLevels.READ_COMMITTED, maxWaitTime: 500, minBytes: 1 },
}[VARIANT]
if (!FETCH) throw new Error(`unknown --variant ${VARIANT}`)
const relayFetch = { ...FETCH, maxWaitTime: Number(arg('relay-wait', FETCH.maxWaitTime)), minBytes: Number(arg('relay-min-bytes', FETCH.minBytes)) }
const readerFetch = { ...FETCH, maxWaitTime: Number(arg('reader-wait', FETCH.maxWaitTime)), minBytes: Number(arg('reader-min-bytes', FETCH.minBytes)) }

const { brokers, pid: brokerPid } = brokerInfo()

// ---------------------------------------------------------------------------------------------
// The relay (child process)
// ---------------------------------------------------------------------------------------------
async function relay() {
  const IN = arg('in'); const OUT = arg('out'); const CL = arg('cl'); const run = arg('run')
  const stats = { transactions: 0, sends: 0, offsetCommits: 0, records: 0, fetchBatches: 0, concurrentRetries: 0, otherRetries: 0, commitMs: 0 }
  const consumer = new Consumer({
    clientId: `hop-relay-${VARIANT}`, bootstrapBrokers: [brokers], groupId: `hop-relay-${run}`, autocommit: false,
    sessionTimeout: 10_000, heartbeatInterval: 1_000, rebalanceTimeout: 10_000, ...relayFetch,
  })
  // As src/kafka/platformatic.ts: CONCURRENT_TRANSACTIONS (the previous transaction's markers are
  // still being written) is retried after 10 ms × attempt, not after the client's default 1 s.
  const retryDelay = (_client, _operation, attempt, _retries, error) => {
    const concurrent = typeof error?.findBy === 'function' && Boolean(error.findBy('apiId', 'CONCURRENT_TRANSACTIONS'))
    if (concurrent) stats.concurrentRetries++
    else stats.otherRetries++
    return concurrent ? 10 * attempt : 200
  }
  const newProducer = (transactionalId) => new Producer({
    // retries 20, not sagactl's 5: under a load of 10 on 2 cores, 5 retries of CONCURRENT_TRANSACTIONS
    // (10+20+30+40+50 ms) ran out once (AddOffsetsToTxn) and killed the run; only the failure differs.
    clientId: `hop-relay-${VARIANT}-producer`, bootstrapBrokers: [brokers], idempotent: true, acks: ProduceAcks.ALL, retries: 20,
    retryDelay, timeout: 20_000, ...(transactionalId ? { transactionalId } : {}),
  })
  const groupMeta = () => ({ consumer: { groupId: consumer.groupId, generationId: consumer.generationId, memberId: consumer.memberId, coordinatorId: consumer.coordinatorId } })
  const fail = (error) => { console.error(`relay ${VARIANT} failed:`, inspect(error, { depth: 6 })); process.exit(1) }

  // What handling a record produces: its output and its changelog record (state + processed id).
  const handle = (m) => {
    const v = JSON.parse(m.value)
    const out = { ...v, step: 'next', causation: `${m.partition}:${m.offset}` }
    const state = { id: v.id, status: 'relayed', processed: [`${m.partition}:${m.offset}`], seq: v.seq }
    return [
      { topic: OUT, key: m.key, value: Buffer.from(JSON.stringify(out)) },
      { topic: CL, key: m.key, value: Buffer.from(JSON.stringify(state)) },
    ]
  }

  let onBatch // (byPartition: Map<partition, {records, next}>) => void
  let flushing = false
  let pending = new Map()
  const flush = () => {
    flushing = false
    const batch = pending
    pending = new Map()
    stats.fetchBatches++
    onBatch(batch)
  }

  let ready
  if (VARIANT === '0') {
    const writers = []
    for (let p = 0; p < PARTITIONS; p++) writers.push({ p, producer: newProducer(`hop0-${run}-${p}`), queue: [], next: undefined, busy: false, lastOffsetAt: 0 })
    ready = async () => {
      await Promise.all(writers.map(async (w) => { const tx = await w.producer.beginTransaction(UNKNOWN_PRODUCER); await tx.cancel() }))
    }
    const pump = async (w) => {
      if (w.busy) return
      w.busy = true
      try {
        while (w.queue.length > 0) {
          const records = w.queue.splice(0, MAX_SEND)
          const now = Date.now()
          const withOffset = w.queue.length === 0 && now - w.lastOffsetAt >= OFFSET_EVERY_MS ? w.next : undefined
          const t0 = performance.now()
          const tx = await w.producer.beginTransaction(UNKNOWN_PRODUCER)
          if (withOffset !== undefined) await tx.addConsumer(consumer)
          await Promise.all([
            tx.send({ messages: records }),
            withOffset === undefined ? undefined : tx.addOffset({ topic: IN, partition: w.p, offset: withOffset - 1n, metadata: groupMeta() }),
          ])
          await tx.commit()
          stats.commitMs += performance.now() - t0
          if (withOffset !== undefined) { w.lastOffsetAt = now; stats.offsetCommits++ }
          stats.transactions++; stats.sends++
        }
      } finally {
        w.busy = false
      }
    }
    onBatch = (batch) => {
      for (const [p, { records, next }] of batch) {
        const w = writers[p]
        w.queue.push(...records)
        w.next = next
        pump(w).catch(fail)
      }
    }
  } else if (VARIANT === 'a') {
    const producer = newProducer(undefined)
    let queue = [] // {records, progress: Map<p, next>}
    let sending = false
    const done = new Map() // partition -> next offset whose outputs are acked
    let committed = new Map()
    ready = async () => { await producer.send({ messages: [] }).catch(() => {}) }
    const pump = async () => {
      if (sending) return
      sending = true
      try {
        while (queue.length > 0) {
          const take = []
          let size = 0
          while (queue.length > 0 && size < MAX_SEND) { const b = queue.shift(); take.push(b); size += b.records.length }
          await producer.send({ messages: take.flatMap((b) => b.records) })
          stats.sends++
          for (const b of take) for (const [p, next] of b.progress) done.set(p, next)
        }
      } finally {
        sending = false
      }
    }
    onBatch = (batch) => {
      const records = []
      const progress = new Map()
      for (const [p, b] of batch) { records.push(...b.records); progress.set(p, b.next) }
      queue.push({ records, progress })
      pump().catch(fail)
    }
    let committing = false
    setInterval(() => {
      if (committing) return
      const offsets = [...done].filter(([p, next]) => committed.get(p) !== next).map(([partition, offset]) => ({ topic: IN, partition, offset, leaderEpoch: -1 }))
      if (offsets.length === 0) return
      committing = true
      consumer.commit({ offsets }).then(() => {
        for (const o of offsets) committed.set(o.partition, o.offset)
        stats.offsetCommits++
      }, fail).finally(() => { committing = false })
    }, COMMIT_MS).unref()
  } else {
    const producer = newProducer(`hopb-${run}`)
    let tx // the open transaction
    let txProgress = new Map() // partition -> next offset, of records sent in tx
    let queue = []
    let sending // promise of the send in flight
    let committing = false
    let lastCommit = Date.now()
    ready = async () => { const t = await producer.beginTransaction(UNKNOWN_PRODUCER); await t.cancel() }
    const pump = async () => {
      if (sending || committing) return
      let resolve
      sending = new Promise((r) => (resolve = r))
      try {
        while (queue.length > 0 && !committing) {
          const take = []
          let size = 0
          while (queue.length > 0 && size < MAX_SEND) { const b = queue.shift(); take.push(b); size += b.records.length }
          if (!tx) { tx = await producer.beginTransaction(UNKNOWN_PRODUCER); scheduleCommit() }
          await tx.send({ messages: take.flatMap((b) => b.records) })
          stats.sends++
          for (const b of take) for (const [p, next] of b.progress) txProgress.set(p, next)
        }
      } finally {
        sending = undefined
        resolve()
      }
    }
    // As Kafka Streams: commit once commit-ms have passed since the last commit, if anything was
    // processed (so the first record after a quiet spell is committed at once).
    let timer
    const scheduleCommit = () => {
      if (timer) return
      timer = setTimeout(() => { timer = undefined; commit().catch(fail) }, Math.max(0, lastCommit + COMMIT_MS - Date.now()))
    }
    const commit = async () => {
      committing = true
      const t0 = performance.now()
      try {
        await sending
        if (!tx) return
        const progress = txProgress
        await tx.addConsumer(consumer)
        // One TxnOffsetCommit per partition, one after another: concurrent addOffset calls on one
        // transaction are deduplicated by the client (kPerformDeduplicated('commit')), so only the
        // first would reach the broker.
        for (const [partition, next] of progress) await tx.addOffset({ topic: IN, partition, offset: next - 1n, metadata: groupMeta() })
        await tx.commit()
        stats.transactions++; stats.offsetCommits += progress.size
        tx = undefined
        txProgress = new Map()
        stats.commitMs += performance.now() - t0
      } finally {
        committing = false
        lastCommit = Date.now()
      }
      if (queue.length > 0) pump().catch(fail)
    }
    onBatch = (batch) => {
      const records = []
      const progress = new Map()
      for (const [p, b] of batch) { records.push(...b.records); progress.set(p, b.next) }
      queue.push({ records, progress })
      pump().catch(fail)
    }
  }

  await ready()
  const stream = await consumer.consume({ topics: [IN], mode: 'committed', fallbackMode: 'earliest' })
  stream.on('error', fail)
  stream.on('data', (m) => {
    stats.records++
    let b = pending.get(m.partition)
    if (!b) pending.set(m.partition, (b = { records: [], next: 0n }))
    b.records.push(...handle(m))
    b.next = m.offset + 1n
    // The client pushes every record of one fetch response synchronously: flush once per response.
    if (!flushing) { flushing = true; setImmediate(flush) }
  })
  // Ready once the group has given us every partition.
  for (let i = 0; i < 200; i++) {
    const assigned = (consumer.assignments ?? []).filter((a) => a.topic === IN).flatMap((a) => a.partitions)
    if (assigned.length === PARTITIONS) break
    await sleep(50)
  }
  process.on('message', async (msg) => {
    if (msg.type === 'cpu') process.send({ type: 'cpu', id: msg.id, ms: selfCpuMs(), stats })
    if (msg.type === 'stop') {
      await stream.close().catch(() => {})
      await consumer.close(true).catch(() => {})
      process.send({ type: 'stopped', stats })
      process.exit(0)
    }
  })
  process.send({ type: 'ready' })
}

// ---------------------------------------------------------------------------------------------
// The driver (parent process)
// ---------------------------------------------------------------------------------------------
async function driver() {
  const RATE = Number(arg('rate', 200))
  const SECONDS = Number(arg('seconds', 20))
  const BURST = Number(arg('burst', 6000))
  const IDLE_S = Number(arg('idle-seconds', 8))
  const run = randomUUID().slice(0, 8)
  const IN = `hop-in-${run}`; const OUT = `hop-out-${run}`; const CL = `hop-cl-${run}`
  const label = `${VARIANT}${VARIANT === '0' ? '' : `-${COMMIT_MS}ms`}`
  const log = (...a) => console.error(`[${label}]`, ...a)
  await createTopics(brokers, [{ name: IN, partitions: PARTITIONS }, { name: OUT, partitions: PARTITIONS }, { name: CL, partitions: PARTITIONS, compacted: true }])

  // Reader of OUT: the next hop's consumer.
  const reader = new Consumer({ clientId: 'hop-reader', bootstrapBrokers: [brokers], groupId: `hop-reader-${run}`, autocommit: false, ...readerFetch })
  const readerStream = await reader.consume({ topics: [OUT], mode: 'earliest' })
  const seen = new Map() // seq -> latency
  let lastSeenAt = 0
  let waiters = []
  readerStream.on('data', (m) => {
    const v = JSON.parse(m.value)
    const now = performance.now()
    if (!seen.has(v.seq)) { seen.set(v.seq, now - v.t); lastSeenAt = now }
    if (waiters.length) { const still = []; for (const w of waiters) (seen.size >= w.n ? w.resolve() : still.push(w)); waiters = still }
  })
  const seenAtLeast = (n, timeoutMs) => seen.size >= n ? Promise.resolve(true) : Promise.race([new Promise((resolve) => waiters.push({ n, resolve: () => resolve(true) })), sleep(timeoutMs).then(() => false)])

  const child = fork(fileURLToPath(import.meta.url), [...args, '--relay', '--in', IN, '--out', OUT, '--cl', CL, '--run', run], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const ipcWaiters = new Map()
  let ipcId = 0
  let childStats
  child.on('message', (msg) => { if (msg.type === 'cpu') { ipcWaiters.get(msg.id)?.(msg); ipcWaiters.delete(msg.id) } if (msg.type === 'stopped') childStats = msg.stats })
  const relayCpu = () => new Promise((resolve) => { const id = ++ipcId; ipcWaiters.set(id, resolve); child.send({ type: 'cpu', id }) })
  await new Promise((resolve, reject) => { child.once('message', (m) => m.type === 'ready' && resolve()); child.once('exit', (c) => reject(new Error(`relay exited ${c}`))) })

  const producer = new Producer({ clientId: 'hop-driver', bootstrapBrokers: [brokers], acks: ProduceAcks.ALL })
  let seq = 0
  const pad = 'x'.repeat(200)
  const message = () => { const s = seq++; const id = randomUUID(); return { topic: IN, key: Buffer.from(id), value: Buffer.from(JSON.stringify({ id, seq: s, t: performance.now(), pad })) } }
  // 1 record per send, at a fixed rate with catch-up, like an outside load of single publishes.
  const paced = async (rate, seconds) => {
    const total = Math.round(rate * seconds)
    const start = performance.now()
    const sends = []
    let sent = 0
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1)
      while (sent < due) { sends.push(producer.send({ messages: [message()] })); sent++ }
      await sleep(2)
    }
    await Promise.all(sends)
    return total
  }
  const snapshot = async () => ({ wall: performance.now(), relay: (await relayCpu()).ms, broker: procCpuMs(brokerPid), driver: selfCpuMs(), load: os.loadavg()[0] })
  const delta = (a, b) => ({ wall: b.wall - a.wall, relay: b.relay - a.relay, broker: b.broker - a.broker, driver: b.driver - a.driver })

  // Warm-up: connections, JIT, producer ids, the first transactions.
  await paced(200, 2)
  if (!(await seenAtLeast(seq, 30_000))) throw new Error(`warm-up: only ${seen.size}/${seq} records came through`)
  await sleep(1000)

  // Idle.
  const i0 = await snapshot()
  await sleep(IDLE_S * 1000)
  const idle = delta(i0, await snapshot())

  // Paced.
  const base = seq
  const r0 = await snapshot()
  const n = await paced(RATE, SECONDS)
  const okRate = await seenAtLeast(base + n, 30_000)
  const rate = delta(r0, await snapshot())
  const lat = summary([...seen].filter(([s]) => s >= base).map(([, l]) => l))
  if (!okRate) log(`paced: only ${lat.n}/${n} seen`)
  await sleep(1500)

  // Burst: every record at once (chunks of 500 per send).
  const bBase = seq
  const b0 = await snapshot()
  const sends = []
  for (let i = 0; i < BURST; i += 500) sends.push(producer.send({ messages: Array.from({ length: Math.min(500, BURST - i) }, message) }))
  await Promise.all(sends)
  const okBurst = await seenAtLeast(bBase + BURST, 60_000)
  const burst = delta(b0, await snapshot())
  const burstSeen = [...seen].filter(([s]) => s >= bBase).length
  const burstSecs = (lastSeenAt - b0.wall) / 1000
  if (!okBurst) log(`burst: only ${burstSeen}/${BURST} seen`)
  const burstLat = summary([...seen].filter(([s]) => s >= bBase).map(([, l]) => l))

  child.send({ type: 'stop' })
  await new Promise((resolve) => { child.once('exit', resolve); setTimeout(resolve, 10_000) })
  if (child.exitCode === null) child.kill('SIGKILL')
  await readerStream.close().catch(() => {})
  await reader.close(true).catch(() => {})
  await producer.close().catch(() => {})
  await deleteTopics(brokers, [IN, OUT, CL])

  const pct = (ms, wall) => (100 * ms) / wall
  const result = {
    variant: label, run, relayFetch, readerFetch, commitMs: COMMIT_MS, load1_at_start: i0.load,
    idle: { relay_pct: pct(idle.relay, idle.wall), broker_pct: pct(idle.broker, idle.wall), driver_pct: pct(idle.driver, idle.wall) },
    paced: { rate: RATE, seconds: SECONDS, records: n, seen: lat.n, p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max, relay_ms_per_rec: rate.relay / n, broker_ms_per_rec: rate.broker / n, driver_ms_per_rec: rate.driver / n },
    burst: { records: BURST, seen: burstSeen, seconds: burstSecs, per_s: burstSeen / burstSecs, p50: burstLat.p50, p99: burstLat.p99, relay_ms_per_rec: burst.relay / BURST, broker_ms_per_rec: burst.broker / BURST, driver_ms_per_rec: burst.driver / BURST },
    relayStats: childStats,
  }
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x))
  console.log(`${label}\tidle relay ${f(result.idle.relay_pct)}% broker ${f(result.idle.broker_pct)}% | 200/s p50 ${f(lat.p50)} p99 ${f(lat.p99)} ms, cpu/rec relay ${f(result.paced.relay_ms_per_rec, 2)} broker ${f(result.paced.broker_ms_per_rec, 2)} | burst ${f(result.burst.per_s, 0)}/s cpu/rec relay ${f(result.burst.relay_ms_per_rec, 3)} broker ${f(result.burst.broker_ms_per_rec, 3)} | load ${f(i0.load, 2)} | ${JSON.stringify(childStats)}`)
  const out = arg('json')
  if (out) writeFileSync(out, JSON.stringify(result, null, 2))
  process.exit(0)
}

if (args.includes('--relay')) await relay().catch((e) => { console.error(e); process.exit(1) })
else await driver().catch((e) => { console.error(e); process.exit(1) })
