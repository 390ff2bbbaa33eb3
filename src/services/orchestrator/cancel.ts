import { randomUUID } from 'node:crypto'

import { event, type Envelope } from '../../envelope.js'
import type { MessageBus } from '../../kafka/port.js'
import type { Saga } from '../../saga/define.js'
import type { TopicNames } from '../../topics.js'
import { CANCEL_ACCEPTED, CANCEL_REQUESTED, isFinished, type SagaStatus } from '../../saga/decide.js'
import { askOrchestrator } from './ask.js'
import { loadSagaState } from './timeline.js'

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
export class CancelNotDone extends Error {}

export interface CancelOptions {
  saga: Saga
  reason: string
  requestedBy: string
  wait: boolean
  timeoutMs: number
}

/** A saga.cancel-requested for one saga, with a fresh message_id. */
export function cancelRequest(saga: { order_id: string; saga_id: string }, reason: string, requestedBy: string): Envelope {
  return event(CANCEL_REQUESTED, { order_id: saga.order_id, saga_id: saga.saga_id, payload: { reason, requested_by: requestedBy } }, Date.now(), randomUUID())
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
 * Asks the orchestrator to cancel a saga, as `saga retry` asks it to resume one: a
 * saga.cancel-requested on order.events, keyed by the order, so whichever instance owns the saga
 * takes it in order with the saga's replies; its answer comes back on the control topic. A saga
 * already ended is refused here, without publishing.
 */
export async function requestSagaCancel(bus: MessageBus, topics: TopicNames, changelog: string, id: string, options: CancelOptions): Promise<CancelResult> {
  const saga = await loadSagaState(bus, changelog, id, options.saga)
  if (isFinished(saga)) throw new CancelNotDone(`the saga of order ${saga.order_id} has already ended: ${saga.status}; nothing changed`)
  const request = cancelRequest(saga, options.reason, options.requestedBy)
  const base = { order_id: saga.order_id, saga_id: saga.saga_id, request_id: request.message_id }
  const publish = () => bus.publish([{ topic: topics.orderEvents, key: saga.order_id, value: JSON.stringify(request) }])
  if (!options.wait) {
    await publish()
    return { ...base, outcome: 'requested', status: saga.status, step: saga.step, reason: options.reason }
  }

  const reply = await askOrchestrator(bus, topics, request, CANCEL_ACCEPTED, options.timeoutMs)
  if (!reply) {
    throw new CancelNotDone(
      `the orchestrator did not answer within ${Math.round(options.timeoutMs / 1000)} s; is \`sagactl start orchestrator\` running? The request (${request.message_id}) stays on order.events and is handled when it runs.`,
    )
  }
  if (!reply.accepted) throw new CancelNotDone(`the orchestrator did not cancel the saga of order ${saga.order_id}: ${String(reply.payload.reason ?? 'no reason given')}`)
  const p = reply.payload
  return { ...base, outcome: 'cancelling', status: p.status as SagaStatus, step: String(p.step), reason: String(p.reason ?? '') }
}
