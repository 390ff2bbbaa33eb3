import { parsePrometheusText, samples, total, type Family } from '../observe/prom-text.js'
import { IN_FLIGHT_STATUSES } from '../saga/decide.js'
import type { RoleName, Saga } from '../saga/define.js'
import { roleNames } from '../saga/derive.js'

/** Where `sagactl dev` makes each role of instance `index` (0-based) serve its metrics. */
export const DEV_METRICS_PORT_BASE = 9400

/**
 * Ten ports per role, in the saga's role order (orchestrator 10, its participants, notifier last),
 * so a saga with more steps gets more ports rather than two roles on one; for the order saga
 * this is orchestrator 10, inventory 20, payment 30, notifier 40, as before steps were modules.
 */
export function devMetricsPort(saga: Saga, role: Exclude<RoleName, 'api'>, index: number, base = DEV_METRICS_PORT_BASE): number {
  const at = roleNames(saga).indexOf(role)
  if (at < 0) throw new Error(`the saga has no role "${role}"`)
  return base + 10 * at + index
}

export interface Endpoint {
  url: string
  /** The role expected there, to name it while it does not answer; what it answers wins. */
  role?: RoleName
}

/** The endpoints `sagactl dev --instances N` serves: the api's on its HTTP ports, the others from the base. */
export function devEndpoints(saga: Saga, apiPort: number, instances: number, base = DEV_METRICS_PORT_BASE, host = '127.0.0.1'): Endpoint[] {
  return roleNames(saga).flatMap((role) => Array.from({ length: instances }, (_, i) => ({ role, url: `http://${host}:${role === 'api' ? apiPort + i : devMetricsPort(saga, role, i, base)}/metrics` })))
}

export interface Scrape {
  endpoint: string
  role?: RoleName
  at: number
  metrics?: Map<string, Family>
  error?: string
}

export async function scrape({ url: endpoint, role }: Endpoint, timeoutMs = 2000): Promise<Scrape> {
  const at = Date.now()
  const base = { endpoint, ...(role ? { role } : {}), at }
  try {
    const response = await fetch(endpoint, { signal: AbortSignal.timeout(timeoutMs) })
    if (response.status !== 200) return { ...base, error: `HTTP ${response.status}` }
    return { ...base, metrics: parsePrometheusText(await response.text()) }
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code
    return { ...base, error: cause ?? (error as Error).message }
  }
}

/** The statuses of a saga not yet ended, from the engine's one list. */
export const IN_FLIGHT = IN_FLIGHT_STATUSES

export interface RoleRow {
  role: string
  /** Endpoints that answered, of those that claim this role (or that did not answer). */
  up: number
  endpoints: number
  lag: number
  outbox: number
  oldest_unsent_s: number
  handled_per_s: number | null
  dead_letters: number
}

export interface TopView {
  at: string
  /** Sagas finished per second between the last two scrapes; null on the first. */
  sagas_per_s: number | null
  finished: { completed: number; cancelled: number }
  in_flight: Record<(typeof IN_FLIGHT)[number], number>
  /** From the orchestrators' duration histograms since they started; null with no saga finished. */
  saga_duration_s: { p50: number | null; p99: number | null }
  /** Dead letters written by every role since it started. */
  dead_letters: number
  roles: RoleRow[]
  down: { endpoint: string; error: string }[]
}

/** Like PromQL's histogram_quantile: linear within the bucket that holds the rank. */
export function quantile(q: number, buckets: { le: number; count: number }[]): number | null {
  const sorted = [...buckets].sort((a, b) => a.le - b.le)
  const count = sorted.at(-1)?.count ?? 0
  if (count === 0) return null
  const rank = q * count
  let lower = 0
  let below = 0
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower
      return lower + ((b.le - lower) * (rank - below)) / Math.max(1, b.count - below)
    }
    lower = b.le
    below = b.count
  }
  return lower
}

function roleOf(s: Scrape): string | undefined {
  for (const family of s.metrics?.values() ?? []) for (const sample of family.samples) if (sample.labels.role) return sample.labels.role
  return undefined
}

function handledTotal(m: Map<string, Family>): number {
  return total(m, 'sagactl_records_handled_total')
}

function finishedTotal(m: Map<string, Family>): number {
  return total(m, 'sagactl_saga_duration_seconds_count')
}

/** One view from this round of scrapes, and rates against the previous round (same endpoints). */
export function summarize(roles: readonly string[], now: Scrape[], before?: Scrape[]): TopView {
  const prev = new Map((before ?? []).map((s) => [s.endpoint, s]))
  const rate = (s: Scrape, value: (m: Map<string, Family>) => number): number | null => {
    const p = prev.get(s.endpoint)
    if (!p?.metrics || !s.metrics || s.at <= p.at) return null
    return Math.max(0, value(s.metrics) - value(p.metrics)) / ((s.at - p.at) / 1000)
  }
  const up = now.filter((s) => s.metrics)
  const buckets = new Map<number, number>()
  let sagasPerS: number | null = null
  const view: TopView = {
    at: new Date(Math.max(0, ...now.map((s) => s.at))).toISOString(),
    sagas_per_s: null,
    finished: { completed: 0, cancelled: 0 },
    in_flight: Object.fromEntries(IN_FLIGHT.map((status) => [status, 0])) as TopView['in_flight'],
    saga_duration_s: { p50: null, p99: null },
    dead_letters: 0,
    roles: [],
    down: now.filter((s) => !s.metrics).map((s) => ({ endpoint: s.endpoint, error: s.error ?? 'no answer' })),
  }
  for (const s of up) {
    const m = s.metrics!
    view.finished.completed += total(m, 'sagactl_saga_duration_seconds_count', { outcome: 'completed' })
    view.finished.cancelled += total(m, 'sagactl_saga_duration_seconds_count', { outcome: 'cancelled' })
    for (const status of IN_FLIGHT) view.in_flight[status] += total(m, 'sagactl_sagas', { status })
    view.dead_letters += total(m, 'sagactl_dead_letters_total')
    for (const b of samples(m, 'sagactl_saga_duration_seconds_bucket')) {
      const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)
      buckets.set(le, (buckets.get(le) ?? 0) + b.value)
    }
    if (samples(m, 'sagactl_saga_duration_seconds_count').length > 0) {
      const r = rate(s, finishedTotal)
      if (r !== null) sagasPerS = (sagasPerS ?? 0) + r
    }
  }
  view.sagas_per_s = sagasPerS
  const histogram = [...buckets].map(([le, count]) => ({ le, count }))
  view.saga_duration_s = { p50: quantile(0.5, histogram), p99: quantile(0.99, histogram) }

  const rows = new Map<string, RoleRow>()
  const known: readonly string[] = roles
  for (const s of now) {
    const role = roleOf(s) ?? s.role ?? '?'
    const row = rows.get(role) ?? { role, up: 0, endpoints: 0, lag: 0, outbox: 0, oldest_unsent_s: 0, handled_per_s: null, dead_letters: 0 }
    rows.set(role, row)
    row.endpoints++
    if (!s.metrics) continue
    const m = s.metrics
    row.up++
    row.lag += total(m, 'sagactl_consumer_lag_records')
    row.outbox += total(m, 'sagactl_outbox_depth')
    row.oldest_unsent_s = Math.max(row.oldest_unsent_s, total(m, 'sagactl_outbox_oldest_unsent_age_seconds'))
    row.dead_letters += total(m, 'sagactl_dead_letters_total')
    const r = rate(s, handledTotal)
    if (r !== null) row.handled_per_s = (row.handled_per_s ?? 0) + r
  }
  const order = (role: string): number => (known.includes(role) ? known.indexOf(role) : known.length)
  view.roles = [...rows.values()].sort((a, b) => order(a.role) - order(b.role))
  return view
}

const fmt = (n: number | null, digits = 1): string => (n === null ? '–' : n.toFixed(digits))
const secs = (n: number | null): string => (n === null ? '–' : n < 1 ? `${(n * 1000).toFixed(0)} ms` : `${n.toFixed(2)} s`)

/** The dashboard as plain text, one screen. */
export function render(view: TopView, intervalS: number): string {
  const lines = [
    `sagactl top   ${view.at.replace('T', ' ').slice(0, 19)} UTC   every ${intervalS} s   (q or Ctrl-C quits)`,
    '',
    `sagas/s ${fmt(view.sagas_per_s).padStart(8)}     completed ${String(view.finished.completed).padStart(7)}   cancelled ${String(view.finished.cancelled).padStart(6)}   dead letters ${view.dead_letters}`,
    `in flight   ${IN_FLIGHT.map((s) => `${s} ${view.in_flight[s]}`).join('   ')}`,
    `saga duration   p50 ${secs(view.saga_duration_s.p50)}   p99 ${secs(view.saga_duration_s.p99)}   (since the orchestrators started)`,
    '',
    `${'role'.padEnd(14)}${'up'.padStart(6)}${'lag'.padStart(8)}${'outbox'.padStart(8)}${'oldest unsent'.padStart(15)}${'handled/s'.padStart(11)}${'dlq'.padStart(6)}`,
    ...view.roles.map(
      (r) =>
        `${r.role.padEnd(14)}${`${r.up}/${r.endpoints}`.padStart(6)}${String(r.lag).padStart(8)}${String(r.outbox).padStart(8)}${secs(r.oldest_unsent_s).padStart(15)}${fmt(r.handled_per_s).padStart(11)}${String(r.dead_letters).padStart(6)}`,
    ),
  ]
  if (view.down.length > 0) lines.push('', ...view.down.map((d) => `no answer from ${d.endpoint}: ${d.error}`))
  return lines.join('\n')
}
