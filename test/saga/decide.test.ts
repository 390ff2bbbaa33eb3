import { describe, expect, it } from 'vitest'

import { event, type Message } from '../../src/envelope.js'
import type { DecideContext } from '../../src/runtime/role.js'
import { classify, decide, type RetryPolicy, type SagaDecision, type SagaState } from '../../src/saga/decide.js'
import { defineSaga } from '../../src/saga/define.js'
import { bankRetry, charge, hold } from './http-saga.js'

// The engine on a saga that is not the order saga: two steps (hold the goods, take the money),
// the second with a retry policy of its own. Nothing here knows about orders or their topics.
const twoSteps = defineSaga({ started: 'order.created', completed: 'order.completed', cancelled: 'order.cancelled', steps: [hold, charge] })
const policy: RetryPolicy = { maxAttempts: 2, minDelayMs: 1000, maxDelayMs: 1000, stepTimeoutMs: 30_000, maxCompensationAttempts: 2 }
const NOW = 5_000_000

let n = 0
const msg = (type: string, payload: Record<string, unknown> = {}): Message => ({ ...event(type, { order_id: 'o-1', saga_id: 's-1', payload }, 0, `m-${++n}`), type })
const ctx = (): DecideContext => {
  let id = 0
  return { now: NOW, random: () => 0, newId: () => `id-${++id}` }
}

function given(...history: Message[]) {
  let state: SagaState | undefined
  for (const m of history) state = decide(twoSteps, policy, state, m, ctx()).state ?? state
  return {
    when(message: Message): SagaDecision & { after: SagaState | undefined; sent: string[] } {
      const d = decide(twoSteps, policy, state, message, ctx())
      return { ...d, after: d.state ?? state, sent: d.messages.map((m) => m.envelope.command_type ?? m.envelope.event_type ?? '') }
    },
  }
}

const created = () => msg('order.created', { amount: 5 })
const held = () => msg('goods.held', { hold_id: 'h-1', attempt: 1 })
const refused = (attempt: number, retryable = true) => msg('money.refused', { reason: 'bank busy', retryable, attempt })

describe('the saga engine on a synthetic two-step saga', () => {
  it('given nothing, when the saga starts, then the first step’s command under the saga’s timeout', () => {
    const d = given().when(created())
    expect(d.sent).toEqual(['hold_goods'])
    expect(d.timer?.dueAt).toBe(NOW + policy.stepTimeoutMs)
  })

  it('given the first step done, when it answers, then the second step’s command under its own timeout', () => {
    const d = given(created()).when(held())
    expect(d.sent).toEqual(['take_money'])
    expect(d.timer?.dueAt).toBe(NOW + bankRetry.stepTimeoutMs)
  })

  it('given the second step failing, then it is retried under its own policy (5 attempts), not the saga’s (2)', () => {
    const d = given(created(), held(), refused(1), msg('saga.retry-due', { step: 'take_money', attempt: 2 })).when(refused(2))
    expect(d.after).toMatchObject({ status: 'waiting_retry', attempt: 2 })
    expect(d.timer!.dueAt - NOW).toBeGreaterThanOrEqual(bankRetry.minDelayMs)
    expect(d.timer!.dueAt - NOW).toBeLessThanOrEqual(bankRetry.maxDelayMs)
  })

  it('given the second step declined, then the first is compensated, and its confirmation cancels the saga', () => {
    const d = given(created(), held()).when(refused(1, false))
    expect(d.sent).toEqual(['release_goods'])
    expect(d.after).toMatchObject({ status: 'compensating', step: 'hold_goods' })
    const done = given(created(), held(), refused(1, false)).when(msg('goods.released', { hold_id: 'h-1', attempt: 1 }))
    expect(done.sent).toEqual(['order.cancelled'])
    expect(done.after?.status).toBe('cancelled')
  })

  it('given the second step in flight, when a cancel is requested, then its undo and then the first step’s, newest first, and the saga is cancelled by request', () => {
    const cancel = msg('saga.cancel-requested', { reason: 'stop', requested_by: 'test' })
    expect(given(created(), held()).when(cancel).sent).toEqual(['return_money', 'saga.cancel-accepted'])
    const undone = msg('money.returned', { payment_id: null, attempt: 1 })
    expect(given(created(), held(), cancel).when(undone).sent).toEqual(['release_goods'])
    const done = given(created(), held(), cancel, undone).when(msg('goods.released', { hold_id: 'h-1', attempt: 1 }))
    expect(done.sent).toEqual(['order.cancelled'])
    expect(done.after).toMatchObject({ status: 'cancelled', reason: 'cancelled by request: stop', compensated: ['take_money', 'hold_goods'] })
  })

  it('classify sorts every message into one closed set of kinds', () => {
    expect(['order.created', 'order.completed', 'goods.held', 'money.refused', 'goods.released', 'saga.retry-due', 'saga.step-timed-out', 'saga.stuck', 'saga.retry-requested', 'saga.cancel-requested', 'parcel.lost'].map((t) => classify(twoSteps, msg(t, { step: 'take_money' })).kind)).toEqual([
      'started', 'finished', 'succeeded', 'failed', 'compensated', 'retry-due', 'timed-out', 'stuck', 'retry-requested', 'cancel-requested', 'unknown',
    ])
  })
})
