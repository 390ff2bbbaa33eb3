import type { Envelope } from '../../envelope.js'
import type { MessageBus } from '../../kafka/port.js'
import type { TopicNames } from '../../topics.js'
import { CANCEL_ACCEPTED, CANCEL_REQUESTED, type SagaStatus } from '../../saga/decide.js'
import { outsideRequest, requestAboutSaga, SagaRequestNotDone, type SagaRequestOptions } from './ask.js'

export interface CancelResult {
  order_id: string
  saga_id: string
  /** The message_id of the saga.cancel-requested this command published. */
  request_id: string
  /** cancelling: the orchestrator took the request; requested: published, not waited for (--no-wait). */
  outcome: 'cancelling' | 'requested'
  status: SagaStatus
  step: string
  /** The reason order.cancelled will carry (cancelling), or the one asked for (requested). */
  reason: string
}

/** The saga cannot be cancelled (it ended, or is already compensating), or the orchestrator did not say it took the request. */
export class CancelNotDone extends SagaRequestNotDone {}

export type CancelOptions = SagaRequestOptions

/** A saga.cancel-requested for one saga, with a fresh message_id. */
export function cancelRequest(saga: { order_id: string; saga_id: string }, reason: string, requestedBy: string): Envelope {
  return outsideRequest(CANCEL_REQUESTED, saga, reason, requestedBy)
}

/**
 * Publishes a cancel request for each saga, without waiting for the orchestrator: the bulk form,
 * for an incident. Each is keyed by its order, so each is ordered with its own saga's replies.
 */
export async function publishCancels(bus: MessageBus, topics: TopicNames, sagas: readonly { order_id: string; saga_id: string }[], reason: string, requestedBy: string): Promise<string[]> {
  const requests = sagas.map((s) => cancelRequest(s, reason, requestedBy))
  if (requests.length > 0) await bus.publish(requests.map((r) => ({ topic: topics.orderEvents, key: r.order_id, value: JSON.stringify(r) })))
  return requests.map((r) => r.message_id)
}

/**
 * Asks the orchestrator to cancel a saga, as `saga retry` asks it to resume one; its answer comes
 * back on the control topic. A saga already ended is refused here, without publishing.
 */
export async function requestSagaCancel(bus: MessageBus, topics: TopicNames, changelog: string, id: string, options: CancelOptions): Promise<CancelResult> {
  const r = await requestAboutSaga(bus, topics, changelog, id, { type: CANCEL_REQUESTED, accepted: CANCEL_ACCEPTED, verb: 'cancel', notDone: CancelNotDone }, options)
  const base = { order_id: r.order_id, saga_id: r.saga_id, request_id: r.request_id }
  const p = r.accepted
  if (!p) return { ...base, outcome: 'requested', status: r.before.status, step: r.before.step, reason: options.reason }
  return { ...base, outcome: 'cancelling', status: p.status as SagaStatus, step: String(p.step), reason: String(p.reason ?? '') }
}
