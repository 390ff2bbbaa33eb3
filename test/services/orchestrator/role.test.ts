import { describe, expect, it } from 'vitest'

import { DEFAULT_ORDER_LIMITS } from '../../../src/order-schema.js'
import type { StateStore } from '../../../src/runtime/role.js'
import { DEADLINE_PASSED } from '../../../src/saga/decide.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { orchestratorRole, SAGA_SCOPE } from '../../../src/services/orchestrator/role.js'
import { naming, REFUSED } from '../../order-cases.js'
import { ctx, msg, ORDER, policy } from './given.js'

function memoryStore(): StateStore & { rows: Map<string, unknown> } {
  const rows = new Map<string, unknown>()
  return { rows, get: <T>(scope: string, key: string) => rows.get(`${scope}/${key}`) as T | undefined, put: (scope, key, value) => void rows.set(`${scope}/${key}`, value) }
}

describe("the orchestrator's check of order.created: the same schema as POST /orders", () => {
  it.each(REFUSED)('given nothing, when an order.created with %s arrives, then it is rejected (dead-lettered) naming the field: no saga, no command', (_case, payload, field) => {
    const store = memoryStore()
    const decision = orchestratorRole(orderSaga, policy, DEFAULT_ORDER_LIMITS).handle(msg('order.created', payload as Record<string, unknown>), store, ctx())
    expect(decision.reject).toMatch(/^invalid order: /)
    expect(decision.reject!.replace(/^invalid order: /, '')).toMatch(naming('payload', field))
    expect(decision.messages ?? []).toEqual([])
    expect(store.rows.size).toBe(0)
  })

  it('given nothing, when an order.created at the bounds it is given arrives, then the saga starts; one past them, it is rejected', () => {
    const role = orchestratorRole(orderSaga, policy, { maxAmount: 1000, maxQty: 5 })
    const store = memoryStore()
    const over = role.handle(msg('order.created', { user_id: null, items: [{ sku: 'a', qty: 5 }], amount: 1001 }), store, ctx())
    expect(over.reject).toMatch(/payload\.amount must be an integer from 1 to 1000/)
    const at = role.handle(msg('order.created', { user_id: null, items: [{ sku: 'a', qty: 5 }], amount: 1000 }), store, ctx())
    expect(at.reject).toBeUndefined()
    expect(at.messages?.map((m) => m.envelope.command_type)).toEqual(['reserve_inventory'])
    expect(store.get(SAGA_SCOPE, ORDER)).toMatchObject({ status: 'running', step: 'reserve_inventory' })
  })

  it('given nothing, when an order.created with deadline_ms arrives (as POST /orders passes it on), then the saga starts with that deadline, and its first timer is the deadline when it comes before the step timeout', () => {
    const store = memoryStore()
    const d = orchestratorRole(orderSaga, policy, DEFAULT_ORDER_LIMITS).handle(msg('order.created', { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: 5, deadline_ms: 5000 }), store, ctx(1_000_000))
    expect(d.reject).toBeUndefined()
    expect(d.messages?.map((m) => m.envelope.command_type)).toEqual(['reserve_inventory'])
    expect(store.get(SAGA_SCOPE, ORDER)).toMatchObject({ status: 'running', deadline_at: 1_005_000 })
    expect(d.timer).toMatchObject({ dueAt: 1_005_000, message: { event_type: DEADLINE_PASSED, payload: { deadline_at: 1_005_000 } } })
  })
})
