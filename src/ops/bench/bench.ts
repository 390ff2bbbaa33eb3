import { randomUUID } from 'node:crypto'

import { event, parseEnvelope } from '../../envelope.js'
import type { ConsumedRecord, MessageBus, Subscription } from '../../kafka/port.js'
import type { TopicNames } from '../../topics.js'
import type { Saga } from '../../saga/define.js'
import { sagaHops } from '../../saga/derive.js'
import { sagaTopics } from '../../services/orchestrator/saga-log.js'
import { keyedIds } from '../../services/api/idempotency.js'
import { renderChart, type Bucket } from './chart.js'
import type { LoopDelay } from './loop-delay.js'
import type { ProcessUsage } from './processes.js'
import { percentiles, type Percentiles } from './stats.js'
import type { SustainedVerdict } from './sustained.js'

export interface BenchOptions {
  saga: Saga
  orders: number
  rate?: number
  concurrency?: number
  via: 'api' | 'kafka'
  apiUrl: string
  /** How long to wait for the last final event once submission has ended. */
  timeoutMs: number
  onProgress?: (submitted: number, finished: number) => void
}

// The hops are the saga's (derive.ts sagaHops): from the publication of order.created to that of
// its final event, as pairs of message types. Every time is a record's Kafka timestamp
// (CreateTime), which the publishing client sets when it sends: for a role, when its relay
// published the message, not when the role decided it. A hop therefore spans consume, decide,
// commit and the relay's wait.

/** Through the api, the first hop is the HTTP request and the api's outbox until order.created is out. */
export const API_HOP = 'POST /orders sent → order.created published'

export function hopLabel(from: string, to: string): string {
  return `${from} published → ${to} published`
}

/** Process-to-process transitions on the measured path: each hop above is one. */
export function hopCount(saga: Saga, via: 'api' | 'kafka'): number {
  return sagaHops(saga).length + (via === 'api' ? 1 : 0)
}

export interface SagaRun {
  submitted: number
  finished: number
  completed: number
  cancelled: number
  duration_s: number
  throughput_steady: number
  /** What latency_ms spans: it depends on --via. */
  latency_from: string
  latency_ms: Percentiles
  /** Submission to the moment the bench consumed the final event (this client's clocks only). */
  seen_latency_ms: Percentiles
  hop_count: number
  hops_ms: Record<string, Percentiles>
  /** The final event's publication to the bench consuming it: the last leg, outside latency_ms. */
  final_seen_ms: Percentiles
  buckets: Bucket[]
}

/** The raw times a kept-up verdict needs; epoch ms. */
export interface Timeline {
  sentAt: number[]
  finishedAt: number[]
  inflight: [number, number][]
}

interface Track {
  /** Epoch ms, taken just before the order is published or POSTed. */
  sentAt: number
  /** Record timestamp of the first message of each type seen for this order. */
  stamps: Map<string, number>
  seenFinalAt?: number
  outcome?: 'order.completed' | 'order.cancelled'
}

const SAMPLE_INFLIGHT_MS = 250

/**
 * Submits orders and follows each to its final event on order.events. Each order is tracked under
 * its id before it is sent, so no message of it can arrive untracked: through the api the id is
 * derived from an Idempotency-Key the bench makes up, as any client could.
 */
export async function runSagas(bus: MessageBus, topics: TopicNames, o: BenchOptions): Promise<SagaRun & { timeline: Timeline }> {
  const tracks = new Map<string, Track>()
  const waiters = new Map<string, () => void>()
  let finished = 0
  let dispatched = 0
  const onRecord = (record: ConsumedRecord): void => {
    const now = Date.now()
    const parsed = parseEnvelope(record.value)
    if (!parsed.ok) return
    const t = tracks.get(parsed.message.order_id)
    if (!t) return
    const type = parsed.message.type
    if (!t.stamps.has(type)) t.stamps.set(type, Number(record.timestamp))
    if ((type === 'order.completed' || type === 'order.cancelled') && t.seenFinalAt === undefined) {
      t.seenFinalAt = now
      t.outcome = type
      finished++
      waiters.get(parsed.message.order_id)?.()
    }
  }
  const subs: Subscription[] = []
  for (const topic of sagaTopics(topics, o.saga)) {
    subs.push(await bus.tail({ topic, fromOffsets: await bus.endOffsets(topic), handler: onRecord }))
  }

  const started = performance.now()
  const startedAt = Date.now()
  let submitted = 0
  const inflight: [number, number][] = []
  const progress = setInterval(() => o.onProgress?.(submitted, finished), 1000)
  const sampler = setInterval(() => inflight.push([Date.now(), dispatched - finished]), SAMPLE_INFLIGHT_MS)
  const submitOne = async (i: number): Promise<string> => {
    const body = { user_id: `bench-${i}`, items: [{ sku: `sku-${i % 50}`, qty: 1 }], amount: 1000 + (i % 100) }
    const key = randomUUID()
    const orderId = o.via === 'kafka' ? randomUUID() : keyedIds(body.user_id, key).orderId
    tracks.set(orderId, { sentAt: Date.now(), stamps: new Map() })
    dispatched++
    if (o.via === 'kafka') {
      const created = event('order.created', { order_id: orderId, saga_id: randomUUID(), payload: body }, Date.now())
      await bus.publish([{ topic: topics.orderEvents, key: orderId, value: JSON.stringify(created) }])
    } else {
      const response = await fetch(`${o.apiUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(body) })
      const answer = (await response.json()) as { order_id: string }
      if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}`)
      if (answer.order_id !== orderId) throw new Error(`POST /orders placed ${answer.order_id}, not ${orderId} as Idempotency-Key "${key}" derives: the bench would lose track of it`)
    }
    submitted++
    return orderId
  }
  const done = (orderId: string): Promise<void> =>
    tracks.get(orderId)?.seenFinalAt !== undefined ? Promise.resolve() : new Promise((resolve) => waiters.set(orderId, resolve))

  try {
    let deadline = Date.now() + o.timeoutMs
    if (o.concurrency) {
      let next = 0
      await Promise.all(
        Array.from({ length: o.concurrency }, async () => {
          while (next < o.orders && Date.now() < deadline) {
            const id = await submitOne(next++)
            let timer: NodeJS.Timeout | undefined
            await Promise.race([done(id), new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))])
            clearTimeout(timer)
          }
        }),
      )
    } else {
      const gap = 1000 / (o.rate ?? 100)
      const sends: Promise<unknown>[] = []
      for (let i = 0; i < o.orders; i++) {
        const wait = started + i * gap - performance.now()
        if (wait > 1) await new Promise((r) => setTimeout(r, wait))
        sends.push(submitOne(i))
      }
      await Promise.all(sends)
      deadline = Date.now() + o.timeoutMs
    }
    while (finished < submitted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  } finally {
    clearInterval(progress)
    clearInterval(sampler)
    o.onProgress?.(submitted, finished)
    await Promise.all(subs.map((s) => s.close()))
  }
  return summarise(o.saga, [...tracks.values()], o.via, startedAt, inflight, submitted)
}

function summarise(saga: Saga, tracks: Track[], via: 'api' | 'kafka', startedAt: number, inflight: [number, number][], submitted: number): SagaRun & { timeline: Timeline } {
  const all = tracks.filter((t) => t.outcome !== undefined && t.stamps.has(t.outcome))
  // Through Kafka, the clock starts at order.created's own record timestamp, as it would for any
  // load generator reading the topic; through the api, when the request left.
  const from = (t: Track): number => (via === 'kafka' ? (t.stamps.get('order.created') ?? t.sentAt) : t.sentAt)
  const end = (t: Track): number => t.stamps.get(t.outcome!)!
  const ends = all.map(end).sort((a, b) => a - b)
  const lo = ends[Math.floor(ends.length * 0.1)] ?? startedAt
  const hi = ends[Math.floor(ends.length * 0.9)] ?? startedAt
  const steady = hi > lo ? (Math.floor(ends.length * 0.9) - Math.floor(ends.length * 0.1)) / ((hi - lo) / 1000) : 0
  const between = (a: (t: Track) => number | undefined, b: (t: Track) => number | undefined): Percentiles =>
    percentiles(all.flatMap((t) => (a(t) !== undefined && b(t) !== undefined ? [b(t)! - a(t)!] : [])))
  const hops_ms: Record<string, Percentiles> = {}
  if (via === 'api') hops_ms[API_HOP] = between((t) => t.sentAt, (t) => t.stamps.get('order.created'))
  for (const [a, b] of sagaHops(saga)) hops_ms[hopLabel(a, b)] = between((t) => t.stamps.get(a), (t) => t.stamps.get(b))
  const bySecond = new Map<number, number[]>()
  for (const t of all) {
    const s = Math.floor((end(t) - startedAt) / 1000)
    bySecond.set(s, [...(bySecond.get(s) ?? []), end(t) - from(t)])
  }
  const buckets: Bucket[] = [...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([second, ls]) => ({ second, completed: ls.length, ...(({ p50, p99 }) => ({ p50, p99 }))(percentiles(ls)) }))
  return {
    submitted,
    finished: all.length,
    completed: all.filter((t) => t.outcome === 'order.completed').length,
    cancelled: all.filter((t) => t.outcome === 'order.cancelled').length,
    duration_s: Math.round(((ends.at(-1) ?? startedAt) - startedAt) / 10) / 100,
    throughput_steady: Math.round(steady * 10) / 10,
    latency_from: via === 'kafka' ? "order.created's record timestamp → the final event's record timestamp" : "POST /orders sent → the final event's record timestamp",
    latency_ms: percentiles(all.map((t) => end(t) - from(t))),
    seen_latency_ms: percentiles(all.map((t) => t.seenFinalAt! - t.sentAt)),
    hop_count: hopCount(saga, via),
    hops_ms,
    final_seen_ms: percentiles(all.map((t) => t.seenFinalAt! - end(t))),
    buckets,
    timeline: { sentAt: tracks.map((t) => t.sentAt), finishedAt: ends, inflight },
  }
}

/** One message at a time through a fresh topic, produce → consume, with the same client. */
export async function measureFloor(bus: MessageBus, topic: string, samples: number): Promise<Percentiles> {
  await bus.ensureTopics([{ name: topic, partitions: 1 }])
  let resolveNext: (() => void) | undefined
  const sub = await bus.tail({ topic, fromOffsets: await bus.endOffsets(topic), handler: () => resolveNext?.() })
  const rtts: number[] = []
  try {
    // The first messages pay for connections and metadata: warm up before measuring.
    for (let i = 0; i < samples + 20; i++) {
      const arrived = new Promise<void>((resolve) => (resolveNext = resolve))
      const t0 = performance.now()
      await bus.publish([{ topic, key: 'floor', value: String(i) }])
      await arrived
      if (i >= 20) rtts.push(performance.now() - t0)
    }
  } finally {
    await sub.close()
  }
  return percentiles(rtts)
}

export interface BenchReport {
  machine: { cpus: number; cpu_model: string; memory_gib: number; node: string; kafka: string }
  options: { orders: number; rate: number | null; concurrency: number | null; duration_s: number | null; via: string }
  /** The run's topics are `<prefix>order.events` etc.: anyone can recompute latency_ms from them. */
  topic_prefix: string
  floor_ms: Percentiles | null
  broker_e2e_ms: { p50: number; p99: number; p999: number; avg: number } | null
  sagas: Omit<SagaRun, 'buckets'>
  /** Open loop only: whether the system kept up with the rate. */
  sustained: SustainedVerdict | null
  /** Saga p50 latency over (hop_count × floor p50). */
  p50_vs_floor: number | null
  cpu: CpuReport
  processes: ProcessUsage[]
  /** Per role, over every process of that role during the run; empty when the roles did not report. */
  loop_delay_ms: Record<string, LoopDelay>
  /** Per role: how long outbox rows waited between their commit and being published. */
  outbox_lag_ms: Record<string, Percentiles>
  chart: string | null
}

export interface CpuReport {
  window_s: number
  /** Every process in `processes`: the roles the bench started (restarts included) and the broker when known. */
  total_ms: number
  per_saga_ms: number | null
  broker_included: boolean
  /** How the broker's process was known, or why it is not counted. */
  broker: string
  /** The bench's own CPU (the load generator), not in total_ms. */
  generator_ms: number
}

export function chartOf(run: SagaRun): string {
  return renderChart(run.buckets, `sagactl: ${run.finished} sagas, ${run.throughput_steady}/s steady, p50 ${run.latency_ms.p50} ms, p99 ${run.latency_ms.p99} ms`)
}
