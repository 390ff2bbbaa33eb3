import { randomUUID } from 'node:crypto'

import { event, parseEnvelope } from '../../envelope.js'
import type { ConsumedRecord, MessageBus, Subscription } from '../../kafka/port.js'
import type { TopicNames } from '../../topics.js'
import { sagaTopics } from '../saga-log.js'
import { renderChart, type Bucket } from './chart.js'
import { usage, type ProcessSample, type ProcessUsage } from './processes.js'
import { percentiles, type Percentiles } from './stats.js'

export interface BenchOptions {
  orders: number
  rate?: number
  concurrency?: number
  via: 'api' | 'kafka'
  apiUrl: string
  timeoutMs: number
  onProgress?: (submitted: number, finished: number) => void
}

export const HOPS = [
  ['order.created', 'reserve_inventory'],
  ['reserve_inventory', 'inventory.reserved'],
  ['inventory.reserved', 'charge_payment'],
  ['charge_payment', 'payment.succeeded'],
  ['payment.succeeded', 'order.completed'],
] as const
/** Produce→consume transitions from submission to the bench seeing the final event. */
export const HOP_COUNT = 6

export interface SagaRun {
  submitted: number
  finished: number
  completed: number
  cancelled: number
  duration_s: number
  throughput_steady: number
  latency_ms: Percentiles
  hops_ms: Record<string, Percentiles>
  buckets: Bucket[]
}

interface Track {
  submittedAt: number
  stamps: Map<string, number>
  finishedAt?: number
  outcome?: string
}

/** Submits orders and follows each to its final event on order.events. */
export async function runSagas(bus: MessageBus, topics: TopicNames, o: BenchOptions): Promise<SagaRun> {
  const tracks = new Map<string, Track>()
  const waiters = new Map<string, () => void>()
  let finished = 0
  const onRecord = (record: ConsumedRecord): void => {
    const now = performance.timeOrigin + performance.now()
    const parsed = parseEnvelope(record.value)
    if (!parsed.ok) return
    const t = tracks.get(parsed.message.order_id)
    if (!t) return
    const type = parsed.message.type
    // The producer's timestamp: when the role that sent it decided, on this machine's clock.
    if (!t.stamps.has(type)) t.stamps.set(type, Number(record.timestamp))
    if ((type === 'order.completed' || type === 'order.cancelled') && t.finishedAt === undefined) {
      t.finishedAt = now
      t.outcome = type
      finished++
      waiters.get(parsed.message.order_id)?.()
    }
  }
  const subs: Subscription[] = []
  for (const topic of sagaTopics(topics)) {
    subs.push(await bus.tail({ topic, fromOffsets: await bus.endOffsets(topic), handler: onRecord }))
  }

  const started = performance.timeOrigin + performance.now()
  let submitted = 0
  const progress = setInterval(() => o.onProgress?.(submitted, finished), 1000)
  const submitOne = async (i: number): Promise<string> => {
    const orderId = randomUUID()
    const body = { user_id: `bench-${i}`, items: [{ sku: `sku-${i % 50}`, qty: 1 }], amount: 1000 + (i % 100) }
    const track: Track = { submittedAt: performance.timeOrigin + performance.now(), stamps: new Map() }
    if (o.via === 'kafka') {
      tracks.set(orderId, track)
      const created = event('order.created', { order_id: orderId, saga_id: randomUUID(), payload: body }, Date.now())
      await bus.publish([{ topic: topics.orderEvents, key: orderId, value: JSON.stringify(created) }])
      submitted++
      return orderId
    }
    const response = await fetch(`${o.apiUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const answer = (await response.json()) as { order_id: string }
    if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}`)
    // Events may already have arrived for it: keep whatever the tail saw under this id.
    tracks.set(answer.order_id, tracks.get(answer.order_id) ?? track)
    submitted++
    return answer.order_id
  }
  const done = (orderId: string): Promise<void> =>
    tracks.get(orderId)?.finishedAt !== undefined ? Promise.resolve() : new Promise((resolve) => waiters.set(orderId, resolve))

  const deadline = Date.now() + o.timeoutMs
  try {
    if (o.concurrency) {
      let next = 0
      await Promise.all(
        Array.from({ length: o.concurrency }, async () => {
          while (next < o.orders && Date.now() < deadline) {
            const id = await submitOne(next++)
            await Promise.race([done(id), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))])
          }
        }),
      )
    } else {
      const gap = 1000 / (o.rate ?? 100)
      const sends: Promise<unknown>[] = []
      for (let i = 0; i < o.orders; i++) {
        const due = started + i * gap
        const wait = due - (performance.timeOrigin + performance.now())
        if (wait > 1) await new Promise((r) => setTimeout(r, wait))
        sends.push(submitOne(i))
      }
      await Promise.all(sends)
    }
    while (finished < submitted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  } finally {
    clearInterval(progress)
    o.onProgress?.(submitted, finished)
    await Promise.all(subs.map((s) => s.close()))
  }

  const all = [...tracks.values()].filter((t) => t.finishedAt !== undefined)
  const latencies = all.map((t) => t.finishedAt! - t.submittedAt)
  const ends = all.map((t) => t.finishedAt!).sort((a, b) => a - b)
  const lo = ends[Math.floor(ends.length * 0.1)] ?? started
  const hi = ends[Math.floor(ends.length * 0.9)] ?? started
  const steady = hi > lo ? (Math.floor(ends.length * 0.9) - Math.floor(ends.length * 0.1)) / ((hi - lo) / 1000) : 0
  const hops_ms: Record<string, Percentiles> = {}
  for (const [from, to] of HOPS) {
    hops_ms[`${from} → ${to}`] = percentiles(all.flatMap((t) => (t.stamps.has(from) && t.stamps.has(to) ? [t.stamps.get(to)! - t.stamps.get(from)!] : [])))
  }
  const bySecond = new Map<number, number[]>()
  for (const t of all) {
    const s = Math.floor((t.finishedAt! - started) / 1000)
    bySecond.set(s, [...(bySecond.get(s) ?? []), t.finishedAt! - t.submittedAt])
  }
  const buckets: Bucket[] = [...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([second, ls]) => ({ second, completed: ls.length, ...(({ p50, p99 }) => ({ p50, p99 }))(percentiles(ls)) }))
  return {
    submitted,
    finished: all.length,
    completed: all.filter((t) => t.outcome === 'order.completed').length,
    cancelled: all.filter((t) => t.outcome === 'order.cancelled').length,
    duration_s: Math.round(((ends.at(-1) ?? started) - started) / 10) / 100,
    throughput_steady: Math.round(steady * 10) / 10,
    latency_ms: percentiles(latencies),
    hops_ms,
    buckets,
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
  options: { orders: number; rate: number | null; concurrency: number | null; via: string }
  floor_ms: Percentiles | null
  broker_e2e_ms: { p50: number; p99: number; p999: number; avg: number } | null
  sagas: Omit<SagaRun, 'buckets'>
  /** Saga p50 latency over (hops × floor p50). */
  p50_vs_floor: number | null
  processes: ProcessUsage[]
  /** Per role: how long outbox rows waited between their commit and being published. */
  outbox_lag_ms: Record<string, Percentiles>
  chart: string | null
}

export function finishReport(run: SagaRun, processesBefore: ProcessSample[], seconds: number): { sagas: Omit<SagaRun, 'buckets'>; processes: ProcessUsage[]; svg: string } {
  const { buckets, ...sagas } = run
  return {
    sagas,
    processes: usage(processesBefore, seconds),
    svg: renderChart(buckets, `sagactl: ${run.finished} sagas, ${run.throughput_steady}/s steady, p50 ${run.latency_ms.p50} ms, p99 ${run.latency_ms.p99} ms`),
  }
}
