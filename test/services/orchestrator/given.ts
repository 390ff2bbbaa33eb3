import { event, type Message } from '../../../src/envelope.js'
import type { DecideContext } from '../../../src/runtime/role.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { decide, type RetryPolicy, type SagaDecision, type SagaState } from '../../../src/saga/decide.js'

export const ORDER = '00000000-0000-4000-8000-000000000001'
export const SAGA = '00000000-0000-4000-8000-000000000002'
export const policy: RetryPolicy = { maxAttempts: 3, minDelayMs: 5000, maxDelayMs: 10000, stepTimeoutMs: 30000, maxCompensationAttempts: 3 }

export function ctx(now = 1_000_000, random = 0.5): DecideContext {
  let n = 0
  return { now, random: () => random, newId: () => `id-${++n}` }
}

let seq = 0
export function msg(type: string, payload: Record<string, unknown> = {}): Message {
  const e = event(type, { order_id: ORDER, saga_id: SAGA, payload }, 0, `m-${++seq}`)
  return { ...e, type }
}

export const created = () => msg('order.created', { user_id: null, items: [{ sku: 'book', qty: 1 }], amount: 999 })

/** given(messages…).when(message) → the decision, and the state it leaves. */
export function given(...history: Message[]) {
  let state: SagaState | undefined
  for (const m of history) state = decide(orderSaga, policy, state, m, ctx()).state ?? state
  return {
    state: () => state,
    when(message: Message, c: DecideContext = ctx()): SagaDecision & { after: SagaState | undefined; sent: { topic: string; type: string; payload: Record<string, unknown> }[] } {
      const d = decide(orderSaga, policy, state, message, c)
      return { ...d, after: d.state ?? state, sent: d.messages.map((m) => ({ topic: m.topic, type: m.envelope.event_type ?? m.envelope.command_type ?? '', payload: m.envelope.payload })) }
    },
  }
}
