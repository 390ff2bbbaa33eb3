import { Type } from '@sinclair/typebox'

import { event, type Outgoing, type Payload } from '../../envelope.js'
import { derivedIds } from '../../runtime/ids.js'
import type { DecideContext } from '../../runtime/role.js'
import type { OrderStatus, OrderView } from './order-view.js'

// POST /orders/:order_id/events/:type: an event a saga waits for (an awaitEvent step), published
// on order.events keyed by the order, for systems that do not write to Kafka themselves. The
// orchestrator decides in log order: it moves a saga waiting for it on, keeps it for one that has
// not reached its step, and ignores it (saying so) once the saga has passed the step.

export const OutsideEventBody = Type.Object({}, { additionalProperties: true, description: "the event's payload: any JSON object, recorded as the wait step's result" })
export const OutsideEventAccepted = Type.Object(
  {
    order_id: Type.String(),
    saga_id: Type.String(),
    type: Type.String(),
    message_id: Type.String({ description: 'the same for every repeat of this event type for this order with the same Idempotency-Key (or none): the orchestrator takes it once' }),
  },
  { description: 'the event is on order.events' },
)

export type OutsideEventAnswer =
  | { outcome: 'unknown' }
  | { outcome: 'not-awaited'; awaited: readonly string[] }
  | { outcome: 'ended'; status: Exclude<OrderStatus, 'pending'>; view: OrderView }
  | { outcome: 'published'; view: OrderView; messageId: string; messages: Outgoing[] }

/**
 * The event's message_id is derived from the order, its type and the Idempotency-Key, so a client
 * that retries publishes the same message, and the saga takes it once.
 */
export function publishOutsideEvent(view: OrderView | undefined, type: string, payload: Payload, awaited: readonly string[], ctx: DecideContext, idempotencyKey?: string): OutsideEventAnswer {
  if (!awaited.includes(type)) return { outcome: 'not-awaited', awaited }
  if (!view) return { outcome: 'unknown' }
  if (view.status !== 'pending') return { outcome: 'ended', status: view.status, view }
  const messageId = derivedIds(JSON.stringify(['event', view.order_id, type, idempotencyKey ?? '']))()
  const envelope = event(type, { order_id: view.order_id, saga_id: view.saga_id, payload }, ctx.now, messageId)
  return { outcome: 'published', view, messageId, messages: [{ topic: 'orderEvents', envelope }] }
}
