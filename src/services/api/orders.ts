import type { Message } from '../../envelope.js'
import { EVENT_TYPES } from '../../order-saga/saga.js'
import { orderProblem, type OrderLimits, type Problem } from '../../order-schema.js'
import { tooOldToTrust } from '../../runtime/retention.js'
import type { Decision, RoleHandler, StateStore } from '../../runtime/role.js'
import { IDEMPOTENCY_SCOPE, type IdempotencyRecord } from './idempotency.js'
import { ORDER_SCOPE, type OrderView } from './order-view.js'

export { ORDER_SCOPE, type OrderStatus, type OrderView } from './order-view.js'

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

const orderViews: RoleHandler = {
  name: 'api',
  consumes: ['orderEvents'],
  // Every api instance answers GET /orders/:id for every order, so each reads every partition.
  global: true,
  handle(message: Message, store: StateStore, ctx): Decision {
    // The event's own time, not this instance's clock: every api instance then holds the same view.
    const at = Date.parse(message.occurred_at ?? '')
    const next = evolveOrder(store.get<OrderView>(ORDER_SCOPE, message.order_id), message, Number.isNaN(at) ? ctx.now : at)
    if (next) store.put(ORDER_SCOPE, message.order_id, next)
    return {}
  },
}

/**
 * Why the read model cannot take an event, if it cannot. Such an event is dead-lettered, as at
 * every role, rather than half-applied: an order.created the orchestrator refuses must not leave
 * a view that stays pending for ever.
 */
export function unreadable(message: Message, orderProblemIn: Problem, known: ReadonlySet<string>): string | undefined {
  if (!known.has(message.type)) return `unknown event type "${message.type}"`
  if (message.type === 'order.created') {
    const problem = orderProblemIn(message.payload, 'payload')
    return problem && `invalid order: ${problem}`
  }
  if (message.type === 'order.cancelled' && typeof message.payload.reason !== 'string') return 'order.cancelled without a payload.reason string'
  return undefined
}

export interface ApiRetention {
  retentionMs: number
  idempotencyTtlMs: number
}

/**
 * The read model behind a guard that holds order.created to the same schema as POST /orders.
 * With a retention, a finished order's view is settled; an Idempotency-Key's record only once the
 * key has expired and SAGA_RETENTION more has passed, because a key whose record is forgotten
 * derives its first generation's ids again, and by then every role must have forgotten that order.
 * An event older than SAGA_RETENTION makes no view: it may belong to a forgotten order.
 */
export function apiRole(limits: OrderLimits, retention?: ApiRetention, events: readonly string[] = EVENT_TYPES): RoleHandler {
  const orderProblemIn = orderProblem(limits)
  const known = new Set(events)
  return {
    ...orderViews,
    handle(message, store, ctx): Decision {
      const reason = unreadable(message, orderProblemIn, known)
      if (reason) return { reject: reason }
      // A view forgotten by retention must not come back, pending for ever, from a late copy of one of its events.
      if (!store.get(ORDER_SCOPE, message.order_id) && tooOldToTrust(message, ctx.now, retention?.retentionMs)) return {}
      return orderViews.handle(message, store, ctx)
    },
    settled(scope, value, now): boolean {
      if (scope === ORDER_SCOPE) return (value as OrderView).status !== 'pending'
      if (scope === IDEMPOTENCY_SCOPE) return retention !== undefined && now - (value as IdempotencyRecord).created_at >= retention.idempotencyTtlMs + retention.retentionMs
      return true
    },
  }
}
