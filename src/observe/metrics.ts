import type { Database } from 'better-sqlite3'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

import type { ConsumedRecord, ProducedRecord } from '../kafka/port.js'
import type { RoleName } from '../saga/define.js'
import type { Decision, RoleHandler } from '../runtime/role.js'
import type { Outcome } from '../runtime/role.js'
import type { Saga } from '../saga/define.js'
import { SAGA_STATUSES } from '../saga/decide.js'
import { ConsumerLag, type LagSources } from './consumer-lag.js'
import { ANSWERS, sagaCounts, type SagaCountOf, type SagaCounter } from './saga-counts.js'

const SAGA_SCOPE = 'saga'

export interface MetricsSources extends LagSources {
  role: RoleName
  /** The saga the role runs: its steps label the saga metrics. */
  saga: Saga
  instance?: string
  /** The role's SQLite file: outbox, timers and saga state are read from it on scrape. */
  db: Database
  /** What an owned partition keeps in memory until sent or committed (a role in a group). */
  queued?(): { depth: number; oldestAt: number | null }
}

/**
 * One registry per role process. Counters move as the runtime reports; gauges that describe
 * stored state (outbox, timers, sagas) and consumer lag are read when scraped, never per record.
 */
export class RoleMetrics implements SagaCounter {
  readonly registry = new Registry()
  readonly #lag: ConsumerLag
  /** What the saga decision being handled would count, once (and only if) its transaction commits. */
  #pendingSaga: (() => void) | undefined

  readonly #records: Counter<'type' | 'outcome'>
  readonly #handleSeconds: Histogram<'type'>
  readonly #deadLetters: Counter
  readonly #relaySeconds: Histogram
  readonly #relayRecords: Counter
  readonly #relayFailures: Counter
  readonly #sagaSeconds: Histogram<'outcome'>
  readonly #retries: Counter<'step'>
  readonly #compensations: Counter<'step'>
  readonly #requests: Counter<'request' | 'answer'>
  readonly #reconnects: Counter
  readonly #httpCalls: Counter
  readonly #httpCircuit: Gauge
  readonly #disconnectedSeconds: Counter
  readonly #brokerRetries: Counter
  /** Set while the consumer is away from the broker. */
  #lostAt: number | undefined

  readonly #saga: Saga

  constructor(sources: MetricsSources) {
    this.#saga = sources.saga
    const registers = [this.registry]
    this.registry.setDefaultLabels({ role: sources.role, instance: sources.instance ?? `pid-${process.pid}` })
    collectDefaultMetrics({ register: this.registry, prefix: 'sagactl_' })

    this.#records = new Counter({ name: 'sagactl_records_handled_total', help: 'Messages handled (consumed records and due timers), by message type and outcome (processed, duplicate, dead-lettered).', labelNames: ['type', 'outcome'], registers })
    this.#handleSeconds = new Histogram({
      name: 'sagactl_handle_duration_seconds',
      help: 'Time to handle one message: inbox check, decision and its SQLite transaction.',
      labelNames: ['type'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    })
    this.#deadLetters = new Counter({ name: 'sagactl_dead_letters_total', help: 'Dead letters written to the dlq topic by this process.', registers })
    this.#relaySeconds = new Histogram({
      name: 'sagactl_relay_send_duration_seconds',
      help: 'Time for the relay to publish one batch of outbox rows (a Kafka transaction, with the offset, for an owned partition).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
    this.#relayRecords = new Counter({ name: 'sagactl_relay_records_total', help: 'Records published by the relay (outbox rows: messages, dead letters, changelog records).', registers })
    this.#relayFailures = new Counter({ name: 'sagactl_relay_failures_total', help: 'Relay sends that failed and will be retried.', registers })
    this.#httpCalls = new Counter({ name: 'sagactl_http_calls_total', help: "A bridged participant's calls to its HTTP service, by outcome (ok, declined, failed, refused-by-circuit).", labelNames: ['outcome'], registers })
    this.#httpCircuit = new Gauge({ name: 'sagactl_http_circuit_open', help: "1 while a bridged participant's circuit is open: its service failed too often in a row and is not called for a while.", registers })
    this.#reconnects = new Counter({
      name: 'sagactl_broker_reconnects_total',
      help: 'Times the consumer lost the broker (connection lost, broker or coordinator gone, partition fenced) and had it again without exiting; how="in_place": requests answered again, partitions kept; how="rejoined": it left and joined its group again.',
      labelNames: ['how'],
      registers,
    })
    this.#brokerRetries = new Counter({ name: 'sagactl_broker_request_retries_total', help: "Requests of the role's consumer (fetch, heartbeat, metadata, …) that failed and were retried, with fresh metadata.", labelNames: ['operation'], registers })
    this.#disconnectedSeconds = new Counter({
      name: 'sagactl_broker_disconnected_seconds_total',
      help: 'Time the consumer spent without the broker, from its first failed retries to an answer or a rejoin (a gap still open counts up to now).',
      registers,
      collect: () => {
        if (this.#lostAt === undefined) return
        const now = Date.now()
        this.#disconnectedSeconds.inc((now - this.#lostAt) / 1000)
        this.#lostAt = now
      },
    })

    const db = sources.db
    const unsent = db.prepare('SELECT count(*) AS depth, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL')
    const depth = new Gauge({ name: 'sagactl_outbox_depth', help: "Outbox rows not yet published, and an owned partition's messages and changelog records not yet published or committed.", registers })
    const oldest = new Gauge({
      name: 'sagactl_outbox_oldest_unsent_age_seconds',
      help: 'Age of the oldest outbox row not yet published; 0 when the outbox is empty.',
      registers,
      collect() {
        const row = unsent.get() as { depth: number; oldest: number | null }
        const queued = sources.queued?.() ?? { depth: 0, oldestAt: null }
        const oldestAt = row.oldest === null ? queued.oldestAt : queued.oldestAt === null ? row.oldest : Math.min(row.oldest, queued.oldestAt)
        depth.set(row.depth + queued.depth)
        this.set(oldestAt === null ? 0 : Math.max(0, (Date.now() - oldestAt) / 1000))
      },
    })
    void oldest
    this.#lag = new ConsumerLag(sources, registers)

    this.#sagaSeconds = new Histogram({
      name: 'sagactl_saga_duration_seconds',
      help: 'From order.created handled to the final event decided, by outcome (completed, cancelled). Its count is the sagas finished here.',
      labelNames: ['outcome'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300],
      registers,
    })
    this.#retries = new Counter({ name: 'sagactl_saga_retries_total', help: 'Step commands sent again (attempt 2 and later), by step.', labelNames: ['step'], registers })
    this.#compensations = new Counter({ name: 'sagactl_saga_compensations_total', help: 'Compensation commands sent (resends included), by the step they undo.', labelNames: ['step'], registers })
    this.#requests = new Counter({
      name: 'sagactl_saga_requests_total',
      help: 'Requests from outside answered by the orchestrator, by request (retry, cancel, pause, resume) and answer (accepted, ignored; refused for a retry).',
      labelNames: ['request', 'answer'],
      registers,
    })
    if (sources.role === 'orchestrator') {
      const byStatus = db.prepare(`SELECT json_extract(value, '$.status') AS status, count(*) AS n FROM state WHERE scope = '${SAGA_SCOPE}' GROUP BY 1`)
      const timers = db.prepare('SELECT count(*) FROM timers').pluck()
      for (const outcome of ['completed', 'cancelled']) this.#sagaSeconds.zero({ outcome })
      for (const labels of ANSWERS.values()) this.#requests.inc(labels, 0)
      for (const step of this.#saga.steps) {
        this.#retries.inc({ step: step.name }, 0)
        if (step.compensation) this.#compensations.inc({ step: step.name }, 0)
      }
      new Gauge({
        name: 'sagactl_sagas',
        help: 'Sagas in the partitions this instance owns, by status.',
        labelNames: ['status'],
        registers,
        collect() {
          const counts = new Map((byStatus.all() as { status: string; n: number }[]).map((r) => [r.status, r.n]))
          for (const status of new Set([...SAGA_STATUSES, ...counts.keys()])) this.set({ status }, counts.get(status) ?? 0)
        },
      })
      new Gauge({
        name: 'sagactl_pending_timers',
        help: 'Retry and step-timeout timers waiting in the partitions this instance owns.',
        registers,
        collect() {
          this.set(timers.get() as number)
        },
      })
    }
  }

  /** A message was handled; `record` is absent for a due timer. */
  handled(record: ConsumedRecord | undefined, type: string | undefined, outcome: Outcome, seconds: number): void {
    const saga = this.#pendingSaga
    this.#pendingSaga = undefined
    if (outcome === 'not-owned') return
    const label = type ?? 'unparseable'
    this.#records.inc({ type: label, outcome })
    this.#handleSeconds.observe({ type: label }, seconds)
    if (outcome === 'dead-lettered' && record) this.#deadLetters.inc()
    if (outcome === 'processed') saga?.()
    if (record) this.#lag.handled(record)
  }

  sent(records: ProducedRecord[], seconds: number, error?: Error): void {
    if (error) {
      this.#relayFailures.inc()
      return
    }
    if (records.length === 0) return
    this.#relaySeconds.observe(seconds)
    this.#relayRecords.inc(records.length)
  }

  /** Wraps the orchestrator's handler to count what its decisions do; other roles pass through. */
  observeSagas(role: RoleHandler): RoleHandler {
    if (role.name !== 'orchestrator') return role
    const steps = new Map(this.#saga.steps.map((s) => [s.command.type as string, s.name]))
    const compensations = new Map(this.#saga.steps.flatMap((s) => (s.compensation ? [[s.compensation.type as string, s.name] as const] : [])))
    return {
      ...role,
      handle: (message, store, ctx): Decision => {
        const decision = role.handle(message, store, ctx)
        const counts = sagaCounts(this.#saga, decision, steps, compensations)
        this.#pendingSaga = counts.length > 0 ? () => counts.forEach((count) => count(this)) : undefined
        return decision
      },
    }
  }

  /** The consumer failed, or is back. */
  httpCall(outcome: string): void {
    this.#httpCalls.inc({ outcome })
  }

  httpCircuit(open: boolean): void {
    this.#httpCircuit.set(open ? 1 : 0)
  }

  connection(event: { kind: 'lost' } | { kind: 'back'; rejoined: boolean }): void {
    const now = Date.now()
    if (event.kind === 'lost') {
      this.#lostAt ??= now
      return
    }
    if (this.#lostAt !== undefined) this.#disconnectedSeconds.inc((now - this.#lostAt) / 1000)
    this.#lostAt = undefined
    this.#reconnects.inc({ how: event.rejoined ? 'rejoined' : 'in_place' })
  }

  brokerRetry(operation: string): void {
    this.#brokerRetries.inc({ operation })
  }

  /** Called by sagaCounts' closures. */
  countSaga(what: SagaCountOf): void {
    if (what.retry) this.#retries.inc({ step: what.retry })
    if (what.request) this.#requests.inc(what.request)
    if (what.compensation) this.#compensations.inc({ step: what.compensation })
    if (what.finished) this.#sagaSeconds.observe({ outcome: what.finished.outcome }, what.finished.seconds)
  }

  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
