import type { Message } from '../../envelope.js'
import type { DecideContext, Decision, RoleHandler, StateStore } from '../../runtime/role.js'
import { orderSaga } from './order-saga.js'
import { decide, type RetryPolicy, type SagaState } from './saga.js'

export const SAGA_SCOPE = 'saga'

export function validateOrderPayload(payload: Record<string, unknown>): string | undefined {
  const { items, amount } = payload
  if (!Array.isArray(items)) return 'payload.items must be an array'
  for (const [i, item] of items.entries()) {
    const it = item as { sku?: unknown; qty?: unknown }
    if (typeof it !== 'object' || it === null || typeof it.sku !== 'string' || typeof it.qty !== 'number' || !Number.isInteger(it.qty) || it.qty < 1) {
      return `payload.items[${i}] must be {sku: string, qty: integer ≥ 1}`
    }
  }
  if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 1) return 'payload.amount must be an integer ≥ 1'
  return undefined
}

export function orchestratorRole(policy: RetryPolicy): RoleHandler {
  return {
    name: 'orchestrator',
    consumes: ['orderEvents'],
    handle(message: Message, store: StateStore, ctx: DecideContext): Decision {
      if (message.type === orderSaga.started) {
        const invalid = validateOrderPayload(message.payload)
        if (invalid) return { reject: invalid }
      }
      const d = decide(orderSaga, policy, store.get<SagaState>(SAGA_SCOPE, message.order_id), message, ctx)
      if (d.state) store.put(SAGA_SCOPE, message.order_id, d.state)
      return d
    },
  }
}
