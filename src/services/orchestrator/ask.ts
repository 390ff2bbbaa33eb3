import { randomUUID } from 'node:crypto'

import { event, parseEnvelope, type Envelope } from '../../envelope.js'
import type { MessageBus } from '../../kafka/port.js'
import type { Saga } from '../../saga/define.js'
import { isFinished, type SagaState } from '../../saga/decide.js'
import type { TopicNames } from '../../topics.js'
import { loadSagaState } from './timeline.js'

export interface OrchestratorAnswer {
  accepted: boolean
  payload: Record<string, unknown>
}

/**
 * Publishes a request for the orchestrator on order.events, keyed by its order, and waits for the
 * answer it writes on the control topic (causation_id = the request). Undefined when none comes
 * within timeoutMs. Every control command (`saga retry`, `cancel`, `pause`, `resume`) asks this way.
 */
export async function askOrchestrator(bus: MessageBus, topics: TopicNames, request: Envelope, acceptedType: string, timeoutMs: number): Promise<OrchestratorAnswer | undefined> {
  let answer: (reply: OrchestratorAnswer) => void = () => {}
  const answered = new Promise<OrchestratorAnswer>((resolve) => (answer = resolve))
  // Follow the control topic from its end as it was before the request went out, so the answer cannot be missed.
  const sub = await bus.tail({
    topic: topics.control,
    fromOffsets: await bus.endOffsets(topics.control),
    handler: (record) => {
      const parsed = parseEnvelope(record.value)
      if (parsed.ok && parsed.message.causation_id === request.message_id) answer({ accepted: parsed.message.type === acceptedType, payload: parsed.message.payload })
    },
  })
  let timer: NodeJS.Timeout | undefined
  try {
    await bus.publish([{ topic: topics.orderEvents, key: request.order_id, value: JSON.stringify(request) }])
    return await Promise.race([answered, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)))])
  } finally {
    clearTimeout(timer)
    await sub.close()
  }
}

export interface SendOptions {
  wait: boolean
  timeoutMs: number
}

/**
 * Sends one request about a saga the way every control command does. Without `wait` it is only
 * published (undefined back); with it, the orchestrator's acceptance's payload comes back, and an
 * answer that ignores the request, or none in time, becomes `notDone` with a sentence the operator
 * can act on: the orchestrator's own reason, or where the request went.
 */
export async function sendSagaRequest(
  bus: MessageBus,
  topics: TopicNames,
  request: Envelope,
  ask: { accepted: string; verb: string; notDone: new (message: string) => Error },
  options: SendOptions,
): Promise<Record<string, unknown> | undefined> {
  if (!options.wait) {
    await bus.publish([{ topic: topics.orderEvents, key: request.order_id, value: JSON.stringify(request) }])
    return undefined
  }
  const reply = await askOrchestrator(bus, topics, request, ask.accepted, options.timeoutMs)
  if (!reply) {
    throw new ask.notDone(
      `the orchestrator did not answer within ${Math.round(options.timeoutMs / 1000)} s; is \`sagactl start orchestrator\` running? The request (${request.message_id}) stays on order.events and is handled when it runs.`,
    )
  }
  if (!reply.accepted) throw new ask.notDone(`the orchestrator did not ${ask.verb} the saga of order ${request.order_id}: ${String(reply.payload.reason ?? 'no reason given')}`)
  return reply.payload
}

/** The orchestrator did not do what was asked (the saga ended, it said why not, or it did not answer). */
export class SagaRequestNotDone extends Error {}

export interface SagaRequestOptions extends SendOptions {
  saga: Saga
  /** Why; the orchestrator records it, and a cancel's final event carries it. */
  reason: string
  /** Who asks, as `saga show` will name them: the command, the api, the timeline page. */
  requestedBy: string
}

export interface SagaRequested {
  order_id: string
  saga_id: string
  /** The message_id of the request published. */
  request_id: string
  /** The saga as read before asking. */
  before: SagaState
  /** The orchestrator's acceptance; undefined when not waited for. */
  accepted: Record<string, unknown> | undefined
}

/** A request from outside about one saga (cancel, pause, resume), with a fresh message_id. */
export function outsideRequest(type: string, saga: { order_id: string; saga_id: string }, reason: string, requestedBy: string): Envelope {
  return event(type, { order_id: saga.order_id, saga_id: saga.saga_id, payload: { reason, requested_by: requestedBy } }, Date.now(), randomUUID())
}

/**
 * Asks the orchestrator to do something to one saga from outside: the request goes on
 * order.events, keyed by the order, so whichever instance owns the saga takes it in log order with
 * the saga's replies. A saga that already ended is refused here, without publishing: nothing a
 * request could do would change it.
 */
export async function requestAboutSaga(
  bus: MessageBus,
  topics: TopicNames,
  changelog: string,
  id: string,
  ask: { type: string; accepted: string; verb: string; notDone: new (message: string) => SagaRequestNotDone },
  options: SagaRequestOptions,
): Promise<SagaRequested> {
  const saga = await loadSagaState(bus, changelog, id, options.saga)
  if (isFinished(saga)) throw new ask.notDone(`the saga of order ${saga.order_id} has already ended: ${saga.status}; nothing changed`)
  const request = outsideRequest(ask.type, saga, options.reason, options.requestedBy)
  const accepted = await sendSagaRequest(bus, topics, request, ask, options)
  return { order_id: saga.order_id, saga_id: saga.saga_id, request_id: request.message_id, before: saga, accepted }
}
