import { describe, expect, it } from 'vitest'

import { event, type Message } from '../../../src/envelope.js'
import { EVENT_TYPES } from '../../../src/order-saga/saga.js'
import { DEFAULT_ORDER_LIMITS } from '../../../src/order-schema.js'
import type { DecideContext } from '../../../src/runtime/role.js'
import { apiRole, ORDER_SCOPE, type OrderView } from '../../../src/services/api/orders.js'
import { naming, REFUSED } from '../../order-cases.js'
import { MemoryApi } from './memory-api.js'

const ORDER = '00000000-0000-4000-8000-000000000001'
const ctx: DecideContext = { now: Date.parse('2030-01-01T00:00:00Z'), newId: () => 'id', random: () => 0.5 }
const order = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }

let seq = 0
function msg(type: string, payload: Record<string, unknown> = {}): Message {
  return { ...event(type, { order_id: ORDER, saga_id: 'saga', payload }, 0, `m-${++seq}`), type }
}

/** The read model as the runtime runs it: given these events, then this one. */
function given(...history: Message[]) {
  const memory = new MemoryApi()
  const role = apiRole(DEFAULT_ORDER_LIMITS)
  for (const m of history) expect(role.handle(m, memory.store, ctx).reject).toBeUndefined()
  return {
    when: (m: Message) => ({ decision: role.handle(m, memory.store, ctx), view: memory.store.get<OrderView>(ORDER_SCOPE, ORDER) }),
  }
}

describe("the api's read model dead-letters what it cannot read, like every role", () => {
  it('given nothing, when an unknown event type arrives, then it is rejected and no view is made', () => {
    const { decision, view } = given().when(msg('order.teleported'))
    expect(decision.reject).toMatch(/unknown event type "order.teleported"/)
    expect(view).toBeUndefined()
  })

  it.each(REFUSED)('given nothing, when an order.created with %s arrives, then it is rejected naming the field, and no view is made', (_case, payload, field) => {
    const { decision, view } = given().when(msg('order.created', payload as Record<string, unknown>))
    expect(decision.reject).toMatch(/^invalid order: /)
    expect(decision.reject!.replace(/^invalid order: /, '')).toMatch(naming('payload', field))
    expect(view).toBeUndefined()
  })

  it('given a pending order, when an order.cancelled without a reason arrives, then it is rejected and the order stays pending', () => {
    const { decision, view } = given(msg('order.created', order)).when(msg('order.cancelled', {}))
    expect(decision.reject).toMatch(/payload\.reason/)
    expect(view?.status).toBe('pending')
  })

  it('given a pending order, when order.cancelled with a reason arrives, then the order is cancelled with that reason', () => {
    const { decision, view } = given(msg('order.created', order), msg('inventory.reserve-failed', { reason: 'out of stock', retryable: false, attempt: 1 })).when(msg('order.cancelled', { reason: 'out of stock' }))
    expect(decision.reject).toBeUndefined()
    expect(view).toMatchObject({ status: 'cancelled', reason: 'out of stock', last_event: 'order.cancelled' })
  })

  it.each(EVENT_TYPES.filter((t) => t !== 'order.created' && t !== 'order.cancelled'))('given a pending order, when %s arrives, then it is read', (type) => {
    const { decision, view } = given(msg('order.created', order)).when(msg(type, { attempt: 1 }))
    expect(decision.reject).toBeUndefined()
    expect(view).toMatchObject({ last_event: type, status: type === 'order.completed' ? 'completed' : 'pending' })
  })

  it('holds order.created to the bounds it is given, like the route and the orchestrator', () => {
    const memory = new MemoryApi()
    const tight = apiRole({ maxAmount: 1000, maxQty: 5 })
    expect(tight.handle(msg('order.created', { ...order, amount: 1001 }), memory.store, ctx).reject).toMatch(/payload\.amount must be an integer from 1 to 1000/)
    expect(tight.handle(msg('order.created', { ...order, amount: 1000 }), memory.store, ctx).reject).toBeUndefined()
  })
})
