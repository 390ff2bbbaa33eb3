import type { MessageBus } from '../../kafka/port.js'
import type { TopicNames } from '../../topics.js'
import { PAUSE_ACCEPTED, PAUSE_REQUESTED, RESUME_ACCEPTED, RESUME_REQUESTED, type SagaStatus } from '../../saga/decide.js'
import { requestAboutSaga, SagaRequestNotDone, type SagaRequested, type SagaRequestOptions } from './ask.js'

export interface PauseResult {
  order_id: string
  saga_id: string
  /** The message_id of the saga.pause-requested this command published. */
  request_id: string
  /** paused: the orchestrator holds the saga; requested: published, not waited for (--no-wait). */
  outcome: 'paused' | 'requested'
  /** paused once held; with --no-wait, the status read before asking. */
  status: SagaStatus
  step: string
  attempt: number
  /** The reason the pause records (the orchestrator's, once held), or the one asked for. */
  reason: string
}

export interface ResumeResult {
  order_id: string
  saga_id: string
  /** The message_id of the saga.resume-requested this command published. */
  request_id: string
  /** resumed: the saga carries on; requested: published, not waited for (--no-wait). */
  outcome: 'resumed' | 'requested'
  /** The status the saga resumed to (running or waiting_retry, or further on); with --no-wait, the one read before asking. */
  status: SagaStatus
  step: string
  attempt: number
}

/** The saga ended, the orchestrator ignored the pause (not running nor waiting: the reason says), or it did not answer. */
export class PauseNotDone extends SagaRequestNotDone {}
/** The saga ended, is not paused (the orchestrator's reason), or the orchestrator did not answer. */
export class ResumeNotDone extends SagaRequestNotDone {}

export type PauseOptions = SagaRequestOptions
/** A resume needs no reason; one given is recorded with it. */
export type ResumeOptions = Omit<SagaRequestOptions, 'reason'> & { reason?: string }

function answered(r: SagaRequested): { status: SagaStatus; step: string; attempt: number } {
  const p = r.accepted
  if (!p) return { status: r.before.status, step: r.before.step, attempt: r.before.attempt }
  return { status: p.status as SagaStatus, step: String(p.step), attempt: Number(p.attempt) }
}

/**
 * Asks the orchestrator to hold a saga: no new command and no retry until it is resumed, its
 * replies recorded meanwhile. Only a running or waiting saga is held; the orchestrator says why
 * it did not hold any other.
 */
export async function requestSagaPause(bus: MessageBus, topics: TopicNames, changelog: string, id: string, options: PauseOptions): Promise<PauseResult> {
  const r = await requestAboutSaga(bus, topics, changelog, id, { type: PAUSE_REQUESTED, accepted: PAUSE_ACCEPTED, verb: 'pause', notDone: PauseNotDone }, options)
  const reason = r.accepted ? String(r.accepted.reason ?? options.reason) : options.reason
  return { order_id: r.order_id, saga_id: r.saga_id, request_id: r.request_id, outcome: r.accepted ? 'paused' : 'requested', ...answered(r), reason }
}

/** Asks the orchestrator to carry a paused saga on from where it stands. */
export async function requestSagaResume(bus: MessageBus, topics: TopicNames, changelog: string, id: string, options: ResumeOptions): Promise<ResumeResult> {
  const r = await requestAboutSaga(bus, topics, changelog, id, { type: RESUME_REQUESTED, accepted: RESUME_ACCEPTED, verb: 'resume', notDone: ResumeNotDone }, { ...options, reason: options.reason ?? '' })
  return { order_id: r.order_id, saga_id: r.saga_id, request_id: r.request_id, outcome: r.accepted ? 'resumed' : 'requested', ...answered(r) }
}

/** What `saga pause` prints. */
export function describePause(r: PauseResult): string {
  return r.outcome === 'paused'
    ? `order ${r.order_id}: paused at ${r.step}, attempt ${r.attempt} (${r.reason}); no command goes out until \`sagactl saga resume ${r.order_id}\``
    : `order ${r.order_id}: pause requested (${r.request_id}); \`sagactl saga show ${r.order_id}\` shows when it is taken`
}

/** What `saga resume` prints. */
export function describeResume(r: ResumeResult): string {
  return r.outcome === 'resumed'
    ? `order ${r.order_id}: resumed, ${r.status} at ${r.step}, attempt ${r.attempt}`
    : `order ${r.order_id}: resume requested (${r.request_id}); \`sagactl saga show ${r.order_id}\` shows when it is taken`
}
