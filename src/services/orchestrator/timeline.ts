import { parseEnvelope, typeOf, type Message } from '../../envelope.js'
import type { ConsumedRecord, MessageBus } from '../../kafka/port.js'
import type { Saga } from '../../saga/define.js'
import { topicTable, type TopicNames } from '../../topics.js'
import { sagaTopics } from './saga-log.js'
import { SAGA_SCOPE } from './role.js'
import { RETRY_DUE, RETRY_REQUESTED, SAGA_STUCK, STEP_TIMED_OUT, type SagaState } from '../../saga/decide.js'

export interface TimelineEntry {
  at: string
  /** in: consumed by the orchestrator; out: sent by it; timer: its own retry or timeout firing. */
  direction: 'in' | 'out' | 'timer'
  topic: string
  type: string
  step: string
  attempt: number | null
  compensation: boolean
  message_id: string
  causation_id: string | null
  payload: Record<string, unknown>
}

/** A request from outside, as `saga show` tells it: who asked, why and when (the request's message_id). */
export interface ShownRequest {
  reason: string
  requested_by: string
  at: string
  request_id: string
}

const shown = <R extends { at: number }>(r: R | undefined): (Omit<R, 'at'> & { at: string }) | null => (r ? { ...r, at: new Date(r.at).toISOString() } : null)

export interface SagaReport {
  order_id: string
  saga_id: string
  status: SagaState['status']
  outcome: 'completed' | 'cancelled' | null
  reason: string | null
  /** Why the saga is stuck, while it is: which compensation ran out of attempts. */
  stuck_reason: string | null
  /** The cancel request that stopped the saga, if one did: who asked, why and when (the request's message_id). */
  cancel_requested: ShownRequest | null
  /**
   * The pause that holds the saga, while it is paused: who asked, why, when, the status it resumes
   * to, and a failure of its step recorded meanwhile (handled on resume).
   */
  paused: (ShownRequest & { was: 'running' | 'waiting_retry'; failure?: { retryable: boolean; reason: string } }) | null
  /** The last resume, if there was one. */
  resumed: ShownRequest | null
  /** While a parallel stage runs: each branch by step name, its status and attempt. */
  branches: Record<string, { status: 'running' | 'waiting_retry' | 'done'; attempt: number }> | null
  /** When the saga is cancelled if it has not ended, when it has a deadline. */
  deadline_at: string | null
  /** The version of the saga's definition it started under, and ends under. */
  version: { name: string; hash: string } | null
  step: string
  attempt: number
  started_at: string
  finished_at: string | null
  timeline: TimelineEntry[]
}

export class SagaNotFound extends Error {}

function stepOf(saga: Saga, type: string, payload: Record<string, unknown>): string {
  if (type === RETRY_DUE || type === STEP_TIMED_OUT || type === SAGA_STUCK || type === RETRY_REQUESTED) return String(payload.step ?? '')
  for (const step of saga.steps) {
    const c = step.compensation
    if ([step.command.type, step.succeeded, step.failed, c?.type, c?.confirmed].includes(type as never)) return step.name
  }
  return 'order'
}

function isCompensation(saga: Saga, type: string): boolean {
  return saga.steps.some((s) => s.compensation?.type === type || s.compensation?.confirmed === type)
}

const SAGA_KEY = `s|${SAGA_SCOPE}|`

/**
 * Reads a saga from the broker alone, so it answers the same from any host: its state is the
 * latest record of the orchestrator's changelog, its timeline the saga topics' records of its
 * order (one partition of each, found by the key).
 */
export async function loadSagaReport(bus: MessageBus, topics: TopicNames, changelog: string, id: string, definition: Saga): Promise<SagaReport> {
  const saga = await loadSagaState(bus, changelog, id, definition)
  const entries: { record: ConsumedRecord; message: Message }[] = []
  for (const topic of sagaTopics(topics, definition)) {
    const count = topicTable(definition)[keyOf(topics, topic)].partitions
    await bus.read({
      topic,
      partitions: [bus.partitionOf(saga.order_id, count)],
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        if (parsed.ok && parsed.message.order_id === saga.order_id) entries.push({ record, message: parsed.message })
      },
    })
  }
  entries.sort((a, b) => (a.record.timestamp === b.record.timestamp ? 0 : a.record.timestamp < b.record.timestamp ? -1 : 1))
  const sent = new Set<string>(definition.steps.map((s) => topics[s.topic.key]))
  // A timer's message may be on the log twice (sent again by a new owner of the partition): the first is the one acted on.
  const timersSeen = new Set<string>()
  const onLog = entries.filter(({ message }) => !isTimer(typeOf(message)) || (!timersSeen.has(message.message_id) && Boolean(timersSeen.add(message.message_id))))
  const timeline = withTimers(onLog.map(({ record, message }): TimelineEntry => {
    const type = typeOf(message)
    const own = sent.has(record.topic) || type === definition.completed || type === definition.cancelled || type === SAGA_STUCK
    return {
      at: new Date(Number(record.timestamp)).toISOString(),
      direction: isTimer(type) ? 'timer' : own ? 'out' : 'in',
      topic: record.topic,
      type,
      step: stepOf(definition, type, message.payload),
      attempt: typeof message.payload.attempt === 'number' ? message.payload.attempt : null,
      compensation: isCompensation(definition, type),
      message_id: message.message_id,
      causation_id: message.causation_id ?? null,
      payload: message.payload,
    }
  }))
  const finished = saga.status === 'completed' || saga.status === 'cancelled'
  return {
    order_id: saga.order_id,
    saga_id: saga.saga_id,
    status: saga.status,
    outcome: finished ? (saga.status as 'completed' | 'cancelled') : null,
    reason: saga.reason ?? null,
    stuck_reason: saga.stuck_reason ?? null,
    cancel_requested: shown(saga.cancel_requested),
    paused: shown(saga.paused),
    resumed: shown(saga.resumed),
    branches: saga.branches ? Object.fromEntries(Object.entries(saga.branches).map(([name, b]) => [name, { status: b.status, attempt: b.attempt }])) : null,
    deadline_at: saga.deadline_at === undefined ? null : new Date(saga.deadline_at).toISOString(),
    version: saga.version ?? null,
    step: saga.step,
    attempt: saga.attempt,
    started_at: new Date(saga.started_at).toISOString(),
    finished_at: saga.finished_at ? new Date(saga.finished_at).toISOString() : null,
    timeline,
  }
}

function isTimer(type: string): boolean {
  return type === RETRY_DUE || type === STEP_TIMED_OUT
}

/**
 * Before 0.4 the orchestrator's own timers never reached a topic; each one shows in what it caused. A command
 * whose cause is not on the log was sent by a timer: a retry after a failure reply, or else a wait
 * that ran out (a step timeout, a compensation resent).
 */
function withTimers(entries: TimelineEntry[]): TimelineEntry[] {
  const known = new Set(entries.map((e) => e.message_id))
  const out: TimelineEntry[] = []
  for (const e of entries) {
    if (e.direction === 'out' && e.causation_id && !known.has(e.causation_id)) {
      const failedBefore = entries.some((f) => f.step === e.step && f.attempt === (e.attempt ?? 0) - 1 && /fail/.test(f.type) && f.at <= e.at)
      const type = !e.compensation && e.type !== SAGA_STUCK && failedBefore ? RETRY_DUE : STEP_TIMED_OUT
      out.push({ ...e, direction: 'timer', topic: 'timer', type, message_id: e.causation_id, causation_id: null, payload: { step: e.step, attempt: e.attempt } })
    }
    out.push(e)
  }
  return out
}

function keyOf(topics: TopicNames, name: string): keyof TopicNames {
  return (Object.keys(topics) as (keyof TopicNames)[]).find((k) => topics[k] === name)!
}

/** A saga's current state, by order id (one changelog partition) or else by saga id (all of them). */
export async function loadSagaState(bus: MessageBus, changelog: string, id: string, definition: Saga): Promise<SagaState> {
  const saga = (await findSagaState(bus, changelog, (k) => k === `${SAGA_KEY}${id}`, topicTable(definition).orderEvents.partitions, id)) ?? (await findSagaState(bus, changelog, (k, s) => k.startsWith(SAGA_KEY) && s?.saga_id === id))
  if (!saga) throw new SagaNotFound(`no saga with order or saga id ${id} in ${changelog}`)
  return saga
}

/** The latest value of the first changelog key that matches, from one partition or all of them. */
async function findSagaState(bus: MessageBus, changelog: string, match: (key: string, state?: SagaState) => boolean, partitions?: number, orderId?: string): Promise<SagaState | undefined> {
  const latest = new Map<string, SagaState | undefined>()
  await bus.read({
    topic: changelog,
    ...(partitions && orderId ? { partitions: [bus.partitionOf(orderId, partitions)] } : {}),
    handler: (record) => {
      const key = record.key?.toString('utf8') ?? ''
      if (!key.startsWith(SAGA_KEY)) return
      const state = record.value ? (JSON.parse(record.value.toString('utf8')) as SagaState) : undefined
      if (match(key, state) || latest.has(key)) latest.set(key, state)
    },
  })
  for (const state of latest.values()) if (state) return state
  return undefined
}

export function renderSagaReport(r: SagaReport, saga: Saga): string {
  const lines = [
    `order  ${r.order_id}`,
    `saga   ${r.saga_id}`,
    `status ${r.status.toUpperCase()}${r.stuck_reason ? ` — ${r.stuck_reason}` : r.reason ? ` — ${r.reason}` : ''}${r.outcome ? '' : ` (at ${r.step}, attempt ${r.attempt})`}`,
  ]
  if (r.stuck_reason) lines.push(`       cancelling because: ${r.reason ?? 'unknown'}`, `       resume with: sagactl saga retry ${r.order_id}`)
  const c = r.cancel_requested
  if (c) lines.push(`       cancel requested by ${c.requested_by} at ${c.at}: ${c.reason} (request ${c.request_id})`)
  const p = r.paused
  if (p) {
    lines.push(`       paused by ${p.requested_by} at ${p.at}: ${p.reason} (request ${p.request_id}); it was ${p.was}`)
    if (p.failure) lines.push(`       failed while paused (${p.failure.reason}); handled on resume`)
    lines.push(`       resume with: sagactl saga resume ${r.order_id}`)
  }
  if (r.branches) lines.push(`       branches: ${Object.entries(r.branches).map(([name, b]) => `${name} ${b.status.replace('_', ' ')}${b.status === 'done' ? '' : ` (attempt ${b.attempt})`}`).join(', ')}`)
  if (r.deadline_at && !r.outcome) lines.push(`       deadline ${r.deadline_at}`)
  if (r.version) lines.push(`       version ${r.version.name}${r.version.name === r.version.hash ? '' : ` (${r.version.hash})`}`)
  const u = r.resumed
  if (u) lines.push(`       last resumed by ${u.requested_by} at ${u.at}${u.reason === 'no reason given' ? '' : `: ${u.reason}`} (request ${u.request_id})`)
  lines.push('')
  const arrows = { in: '←', out: '→', timer: '⏱' } as const
  for (const e of r.timeline) {
    const detail = [
      e.payload.reason ? `reason: ${String(e.payload.reason)}` : '',
      e.payload.retryable === false ? 'not retryable' : '',
      typeof e.payload.requested_by === 'string' ? `requested by ${e.payload.requested_by}` : '',
      // Each step's effect, named by its id field: reservation_id → "reservation r-1".
      ...saga.steps.map((s) => (e.payload[s.effectId] ? `${s.effectId.replace(/_id$/, '')} ${String(e.payload[s.effectId])}` : '')),
    ]
      .filter(Boolean)
      .join(', ')
    lines.push(
      `${e.at.slice(11, 23)}  ${arrows[e.direction]} ${e.type.padEnd(32)} ${e.step.padEnd(18)} ${e.attempt ? `attempt ${e.attempt}` : '         '}${e.compensation ? '  ↩ compensation' : ''}${detail ? `  ${detail}` : ''}`,
    )
  }
  if (r.outcome) lines.push('', `outcome: ${r.outcome}${r.finished_at ? ` at ${r.finished_at}` : ''}`)
  return lines.join('\n')
}
