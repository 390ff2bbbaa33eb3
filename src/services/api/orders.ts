import type { Message } from '../../envelope.js'
import type { Decision, RoleHandler, StateStore } from '../../runtime/role.js'

export const ORDER_SCOPE = 'order'

export type OrderStatus = 'pending' | 'completed' | 'cancelled'

export interface OrderView {
  order_id: string
  saga_id: string
  status: OrderStatus
  last_event: string
  reason?: string
  created_at: string
  updated_at: string
}

/** The api's read model: each order's status, kept current from order.events. */
export function evolveOrder(view: OrderView | undefined, message: Message, now: number): OrderView | undefined {
  const at = new Date(now).toISOString()
  const base: OrderView = view ?? { order_id: message.order_id, saga_id: message.saga_id, status: 'pending', last_event: message.type, created_at: at, updated_at: at }
  if (base.status !== 'pending') return view
  switch (message.type) {
    case 'order.completed':
      return { ...base, status: 'completed', last_event: message.type, updated_at: at }
    case 'order.cancelled':
      return { ...base, status: 'cancelled', last_event: message.type, updated_at: at, reason: String(message.payload.reason ?? '') }
    default:
      return { ...base, last_event: message.type, updated_at: at }
  }
}

export const apiRole: RoleHandler = {
  name: 'api',
  consumes: ['orderEvents'],
  // Every api instance answers GET /orders/:id for every order, so each reads every partition.
  global: true,
  handle(message: Message, store: StateStore, ctx): Decision {
    const next = evolveOrder(store.get<OrderView>(ORDER_SCOPE, message.order_id), message, ctx.now)
    if (next) store.put(ORDER_SCOPE, message.order_id, next)
    return {}
  },
}
