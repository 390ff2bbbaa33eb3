import type { RoleName } from '../../saga/define.js'
import type { Saga } from '../../saga/define.js'
import { roleNames } from '../../saga/derive.js'
import { RETRY_DUE, STEP_TIMED_OUT } from '../../saga/decide.js'
import type { SagaReport, TimelineEntry } from '../../services/orchestrator/timeline.js'

/** One lane per role of the saga, participants in step order: the timeline is read the way the saga runs. */
/** One lane per role of the saga, in its order. */
export function lanesOf(saga: Saga): readonly RoleName[] {
  return roleNames(saga)
}
export type Lane = RoleName

export interface Mark {
  lane: Lane
  /** Milliseconds after the saga's first record. */
  at: number
  type: string
  step: string
  attempt: number | null
  kind: 'command' | 'event' | 'timer' | 'final' | 'notified'
  compensation: boolean
  failed: boolean
}

export interface Span {
  lane: Lane
  from: number
  to: number
  /** handling: a participant working on a command; wait: the orchestrator waiting out a retry delay or a timeout. */
  kind: 'handling' | 'wait'
  step: string
  attempt: number | null
  compensation: boolean
  /** The span is still open: no reply yet, drawn up to `until`. */
  open: boolean
}

export interface Swimlanes {
  lanes: readonly Lane[]
  start: string
  /** Where the drawing ends: the final event, or `now` while the saga runs. */
  until: number
  marks: Mark[]
  spans: Span[]
}

/** The participant a command goes to (its step's topic, whatever the prefix) or a reply comes from (its step's types). */
function participantOf(saga: Saga, finals: ReadonlySet<string>, e: TimelineEntry): Lane | undefined {
  const step = saga.steps.find((s) =>
    e.direction === 'out' && !finals.has(e.type) ? e.topic.endsWith(s.topic.name) : [s.succeeded, s.failed, s.compensation.confirmed].includes(e.type),
  )
  return step?.role
}

/**
 * Places the timeline that `saga show` builds onto one lane per role, in milliseconds from the
 * first record, so a page can draw retries, waits and compensations to scale.
 */
export function swimlanesOf(report: SagaReport, now: number, saga: Saga): Swimlanes {
  const FINALS = new Set<string>([saga.completed, saga.cancelled])
  const t0 = report.timeline.length > 0 ? Date.parse(report.timeline[0]!.at) : Date.parse(report.started_at)
  const rel = (e: TimelineEntry): number => Date.parse(e.at) - t0
  const finished = report.timeline.find((e) => FINALS.has(e.type))
  const until = finished ? rel(finished) : Math.max(now - t0, ...report.timeline.map(rel))
  const marks: Mark[] = []
  const spans: Span[] = []
  const base = (e: TimelineEntry) => ({ at: rel(e), type: e.type, step: e.step, attempt: e.attempt, compensation: e.compensation, failed: /fail/.test(e.type) })

  report.timeline.forEach((e, i) => {
    if (e.direction === 'timer') {
      marks.push({ ...base(e), lane: 'orchestrator', kind: 'timer' })
      // A retry waits from the failure it answers; a timeout from the command it gave up on.
      const earlier = report.timeline.slice(0, i).reverse()
      const from = e.type === RETRY_DUE ? earlier.find((f) => f.step === e.step && /fail/.test(f.type) && f.attempt === (e.attempt ?? 0) - 1) : e.type === STEP_TIMED_OUT ? earlier.find((f) => f.step === e.step && f.direction === 'out') : undefined
      if (from) spans.push({ lane: 'orchestrator', kind: 'wait', from: rel(from), to: rel(e), step: e.step, attempt: e.attempt, compensation: e.compensation, open: false })
      return
    }
    if (e.type === saga.started) marks.push({ ...base(e), lane: 'api', kind: 'event' })
    else if (FINALS.has(e.type)) marks.push({ ...base(e), lane: 'orchestrator', kind: 'final' })
    else if (e.direction === 'out') {
      marks.push({ ...base(e), lane: 'orchestrator', kind: 'command' })
      const participant = participantOf(saga, FINALS, e)
      const reply = report.timeline.find((r) => r.causation_id === e.message_id && r.direction === 'in')
      if (participant) spans.push({ lane: participant, kind: 'handling', from: rel(e), to: reply ? rel(reply) : until, step: e.step, attempt: e.attempt, compensation: e.compensation, open: !reply })
    } else marks.push({ ...base(e), lane: participantOf(saga, FINALS, e) ?? 'orchestrator', kind: 'event' })
    // The notifier turns every event on order.events into one readable line.
    if (e.direction !== 'out' || FINALS.has(e.type)) marks.push({ ...base(e), lane: 'notifier', kind: 'notified' })
  })
  return { lanes: lanesOf(saga), start: new Date(t0).toISOString(), until, marks, spans }
}
