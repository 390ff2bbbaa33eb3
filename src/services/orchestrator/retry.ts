import { randomUUID } from 'node:crypto'

import { event } from '../../envelope.js'
import type { MessageBus } from '../../kafka/port.js'
import type { Saga } from '../../saga/define.js'
import type { TopicNames } from '../../topics.js'
import { RETRY_ACCEPTED, RETRY_REQUESTED, type SagaStatus } from '../../saga/decide.js'
import { sendSagaRequest } from './ask.js'
import { loadSagaState } from './timeline.js'

export interface RetryResult {
  order_id: string
  saga_id: string
  /** The message_id of the saga.retry-requested this command published. */
  request_id: string
  /** resumed: the orchestrator took the request; requested: published, not waited for (--no-wait). */
  outcome: 'resumed' | 'requested'
  status: SagaStatus
  step: string
  attempt: number
  /** The fresh budget: how many attempts the compensation now has before it is stuck again. */
  attempts: number | null
}

/** The saga cannot be retried, or the orchestrator did not say it was; the message says which and why. */
export class RetryNotDone extends Error {}

export interface RetryOptions {
  saga: Saga
  wait: boolean
  timeoutMs: number
}

/**
 * Asks the orchestrator to resume a stuck saga, through Kafka like everything else: a
 * saga.retry-requested on order.events, keyed by the order, so whichever instance owns the saga
 * handles it in order with the saga's replies. Its answer comes back on the control topic.
 */
export async function requestRetry(bus: MessageBus, topics: TopicNames, changelog: string, id: string, options: RetryOptions): Promise<RetryResult> {
  const saga = await loadSagaState(bus, changelog, id, options.saga)
  if (saga.status !== 'stuck') throw new RetryNotDone(`the saga of order ${saga.order_id} is ${saga.status}, not stuck: nothing to retry`)
  const request = event(RETRY_REQUESTED, { order_id: saga.order_id, saga_id: saga.saga_id, payload: { step: saga.step, attempt: saga.attempt } }, Date.now(), randomUUID())
  const base = { order_id: saga.order_id, saga_id: saga.saga_id, request_id: request.message_id }
  const p = await sendSagaRequest(bus, topics, request, { accepted: RETRY_ACCEPTED, verb: 'retry', notDone: RetryNotDone }, options)
  if (!p) return { ...base, outcome: 'requested', status: saga.status, step: saga.step, attempt: saga.attempt, attempts: null }
  return {
    ...base,
    outcome: 'resumed',
    status: p.status as SagaStatus,
    step: String(p.step),
    attempt: Number(p.attempt),
    attempts: typeof p.attempts === 'number' ? p.attempts : null,
  }
}
