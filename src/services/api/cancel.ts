import { Type } from '@sinclair/typebox'

import { event, type Outgoing } from '../../envelope.js'
import { derivedIds } from '../../runtime/ids.js'
import type { DecideContext } from '../../runtime/role.js'
import { CANCEL_REQUESTED } from '../../saga/decide.js'
import type { OrderStatus, OrderView } from './order-view.js'

// POST /orders/:order_id/cancel. The api only asks: the request is a saga.cancel-requested on
// order.events, keyed by the order, and the orchestrator decides in log order. So a 202 can still
// lose a race with the saga's final event, and the order then ends as that event says.

export const CancelBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500, description: 'a string of up to 500 characters' })) },
  { additionalProperties: false, description: 'optional: why the order is cancelled; order.cancelled says "cancelled by request: <reason>"' },
)
export const CancelAccepted = Type.Object(
  {
    order_id: Type.String(),
    saga_id: Type.String(),
    status: Type.Literal('cancel_requested'),
    request_id: Type.String({ description: 'the message_id of the saga.cancel-requested published; the same for a repeated Idempotency-Key' }),
  },
  { description: 'the cancel request is on order.events; the orchestrator stops retrying, undoes what was done and publishes order.cancelled, unless the final event came first' },
)
export const CancelConflict = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    status: Type.Union([Type.Literal('completed'), Type.Literal('cancelled')], { description: "the order's final status" }),
  },
  { description: 'the order has already ended; nothing is published and nothing changes' },
)

export type CancelAnswer =
  | { outcome: 'unknown' }
  | { outcome: 'ended'; status: Exclude<OrderStatus, 'pending'>; view: OrderView }
  | { outcome: 'requested'; view: OrderView; requestId: string; messages: Outgoing[] }

/**
 * The api's answer to a cancel, from its read model of the order. With an Idempotency-Key the
 * request's message_id is derived from the order and the key, so a repeat (from any api instance)
 * is the same message and the orchestrator takes it once; without one, a second request is a
 * second message that the orchestrator answers as already cancelled.
 */
export function requestCancel(view: OrderView | undefined, reason: string | undefined, ctx: DecideContext, idempotencyKey?: string): CancelAnswer {
  if (!view) return { outcome: 'unknown' }
  if (view.status !== 'pending') return { outcome: 'ended', status: view.status, view }
  const requestId = idempotencyKey === undefined ? ctx.newId() : derivedIds(JSON.stringify(['cancel', view.order_id, idempotencyKey]))()
  const payload = { reason: reason ?? '', requested_by: 'api' }
  const envelope = event(CANCEL_REQUESTED, { order_id: view.order_id, saga_id: view.saga_id, payload }, ctx.now, requestId)
  return { outcome: 'requested', view, requestId, messages: [{ topic: 'orderEvents', envelope }] }
}
