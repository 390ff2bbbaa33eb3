import { Type } from '@sinclair/typebox'

import { event, type Outgoing } from '../../envelope.js'
import { derivedIds } from '../../runtime/ids.js'
import type { DecideContext } from '../../runtime/role.js'
import { CANCEL_REQUESTED, PAUSE_REQUESTED, RESUME_REQUESTED } from '../../saga/decide.js'
import type { OrderStatus, OrderView } from './order-view.js'

// POST /orders/:order_id/cancel, /pause and /resume. The api only asks: each request is a record on
// order.events, keyed by the order, and the orchestrator decides in log order. So a 202 says the
// request is on the log, not that it was taken: it can lose a race with the saga's final event, and
// a pause of a saga already compensating is ignored. The orchestrator's answer is on sagactl.control.

export const SAGA_REQUEST_KINDS = ['cancel', 'pause', 'resume'] as const
export type SagaRequestKind = (typeof SAGA_REQUEST_KINDS)[number]

/** What each request is on the log, and how the OpenAPI document tells it. */
export const SAGA_REQUESTS: Record<SagaRequestKind, { type: string; summary: string; description: string; reason: string; accepted: string }> = {
  cancel: {
    type: CANCEL_REQUESTED,
    summary: 'Cancel an order',
    description:
      'Publishes one saga.cancel-requested on order.events, keyed by the order. The orchestrator takes it in log order with the saga\'s replies: it stops retrying, undoes the step in flight and every done step, newest first, and publishes order.cancelled with the reason "cancelled by request: <reason>". If the saga\'s last reply is before it in the log, the saga has completed and the cancel changes nothing. A paused saga is cancelled too.',
    reason: 'optional: why the order is cancelled; order.cancelled says "cancelled by request: <reason>"',
    accepted: 'the cancel request is on order.events; the orchestrator stops retrying, undoes what was done and publishes order.cancelled, unless the final event came first',
  },
  pause: {
    type: PAUSE_REQUESTED,
    summary: "Pause an order's saga",
    description:
      "Publishes one saga.pause-requested on order.events, keyed by the order. The orchestrator holds a running saga or one waiting for a retry: no new command and no retry until a resume; replies that arrive are recorded, and the saga's deadline still runs. It ignores the pause of a saga already compensating, stuck or paused (saga.pause-ignored on sagactl.control says why).",
    reason: 'optional: why the saga is held; `sagactl saga show` shows it with who asked and when',
    accepted: 'the pause request is on order.events; the orchestrator holds the saga unless it is already compensating, stuck or paused, or ended first',
  },
  resume: {
    type: RESUME_REQUESTED,
    summary: "Resume an order's paused saga",
    description:
      'Publishes one saga.resume-requested on order.events, keyed by the order. The orchestrator carries a paused saga on from where it stands: a reply recorded while paused is acted on, and a retry or step timeout that fell due while paused fires at once. A saga that is not paused is left as it is (saga.resume-ignored on sagactl.control).',
    reason: 'optional: why the saga is resumed; `sagactl saga show` shows it',
    accepted: 'the resume request is on order.events; the orchestrator carries the saga on if it is paused',
  },
}

export const requestBody = (kind: SagaRequestKind) =>
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500, description: 'a string of up to 500 characters' })) }, { additionalProperties: false, description: SAGA_REQUESTS[kind].reason })

export const requestAccepted = <K extends SagaRequestKind>(kind: K) =>
  Type.Object(
    {
      order_id: Type.String(),
      saga_id: Type.String(),
      status: Type.Literal(`${kind}_requested` as `${K}_requested`),
      request_id: Type.String({ description: `the message_id of the ${SAGA_REQUESTS[kind].type} published; the same for a repeated Idempotency-Key` }),
    },
    { description: SAGA_REQUESTS[kind].accepted },
  )

export const RequestConflict = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    status: Type.Union([Type.Literal('completed'), Type.Literal('cancelled')], { description: "the order's final status" }),
  },
  { description: 'the order has already ended; nothing is published and nothing changes' },
)

export type RequestAnswer =
  | { outcome: 'unknown' }
  | { outcome: 'ended'; status: Exclude<OrderStatus, 'pending'>; view: OrderView }
  | { outcome: 'requested'; view: OrderView; requestId: string; messages: Outgoing[] }

/**
 * The api's answer to a request about an order's saga, from its read model of the order. With an
 * Idempotency-Key the request's message_id is derived from the kind, the order and the key, so a
 * repeat (from any api instance) is the same message and the orchestrator takes it once; without
 * one, a second request is a second message, which the orchestrator answers as it stands then.
 */
export function requestFromOutside(kind: SagaRequestKind, view: OrderView | undefined, reason: string | undefined, ctx: DecideContext, idempotencyKey?: string): RequestAnswer {
  if (!view) return { outcome: 'unknown' }
  if (view.status !== 'pending') return { outcome: 'ended', status: view.status, view }
  const requestId = idempotencyKey === undefined ? ctx.newId() : derivedIds(JSON.stringify([kind, view.order_id, idempotencyKey]))()
  const payload = { reason: reason ?? '', requested_by: 'api' }
  const envelope = event(SAGA_REQUESTS[kind].type, { order_id: view.order_id, saga_id: view.saga_id, payload }, ctx.now, requestId)
  return { outcome: 'requested', view, requestId, messages: [{ topic: 'orderEvents', envelope }] }
}
