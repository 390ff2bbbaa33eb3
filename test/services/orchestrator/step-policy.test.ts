import { describe, expect, it } from 'vitest'

import type { Message } from '../../../src/envelope.js'
import { defineSaga, defineStep } from '../../../src/saga/define.js'
import { inventory } from '../../../src/order-saga/inventory.js'
import { payment } from '../../../src/order-saga/payment.js'
import { decide, policyFor, STEP_TIMED_OUT, type SagaDecision, type SagaState, type StepRetryPolicy } from '../../../src/saga/decide.js'
import { created, ctx, msg, policy } from './given.js'

/** The order saga with a retry policy of the payment step's own. */
function sagaWith(retry: StepRetryPolicy) {
  return defineSaga({ started: 'order.created', completed: 'order.completed', cancelled: 'order.cancelled', steps: [inventory, { ...payment, retry }] })
}

function run(retry: StepRetryPolicy, history: Message[], message: Message): SagaDecision & { after: SagaState | undefined } {
  const saga = sagaWith(retry)
  let state: SagaState | undefined
  for (const m of history) state = decide(saga, policy, state, m, ctx()).state ?? state
  const d = decide(saga, policy, state, message, ctx())
  return { ...d, after: d.state ?? state }
}

const reserved = msg('inventory.reserved', { reservation_id: 'r-1', attempt: 1 })
const failed = (attempt: number, reason = 'card declined') => msg('payment.failed', { reason, retryable: true, attempt })
const due = (attempt: number) => msg('saga.retry-due', { step: 'charge_payment', attempt })

describe('a retry policy per step', () => {
  it('given the saga allows 3 attempts and the step 5, when attempt 3 fails, then attempt 4 is scheduled within the step’s delays', () => {
    const history = [created(), reserved, failed(1), due(2), failed(2), due(3)]
    const d = run({ maxAttempts: 5, minDelayMs: 10, maxDelayMs: 20 }, history, failed(3))
    expect(d.after).toMatchObject({ status: 'waiting_retry', step: 'charge_payment', attempt: 3 })
    expect(d.timer!.dueAt - ctx().now).toBeGreaterThanOrEqual(10)
    expect(d.timer!.dueAt - ctx().now).toBeLessThanOrEqual(20)
  })

  it('given the step allows 1 attempt, when attempt 1 fails retryably, then it compensates at once, that step first (its outcome is unknown)', () => {
    const d = run({ maxAttempts: 1 }, [created(), reserved], failed(1))
    expect(d.after).toMatchObject({ status: 'compensating', step: 'charge_payment', uncertain: ['charge_payment'] })
    expect(d.messages.map((m) => m.envelope.command_type)).toEqual(['refund_payment'])
  })

  it('given a reason the step never retries, when a failure says it is retryable, then it compensates at once', () => {
    const d = run({ notRetryable: ['stolen card'] }, [created(), reserved], failed(1, 'stolen card reported'))
    expect(d.after).toMatchObject({ status: 'compensating', reason: 'stolen card reported' })
  })

  it('given the step’s own timeout, then its command’s timer is due after it, and the other step keeps the saga’s', () => {
    const first = run({ stepTimeoutMs: 1234 }, [], created())
    expect(first.timer).toMatchObject({ dueAt: ctx().now + policy.stepTimeoutMs, message: { event_type: STEP_TIMED_OUT } })
    const second = run({ stepTimeoutMs: 1234 }, [created()], reserved)
    expect(second.timer!.dueAt).toBe(ctx().now + 1234)
  })

  it('policyFor takes what the step sets and the saga’s for the rest', () => {
    expect(policyFor({ ...payment, retry: { maxAttempts: 7 } }, policy)).toEqual({ ...policy, maxAttempts: 7, notRetryable: [] })
    expect(policyFor(payment, policy)).toEqual({ ...policy, notRetryable: [] })
  })
})

describe('a definition that names the field it gets wrong', () => {
  const base = { started: 'order.created', completed: 'order.completed', cancelled: 'order.cancelled' }
  it('refuses a retry setting that is not a whole number, an unknown one, and delays the wrong way round', () => {
    expect(() => sagaWith({ maxAttempts: 0 })).toThrow('step charge_payment: retry.maxAttempts must be a whole number ≥ 1, got 0')
    expect(() => sagaWith({ maxAttempts: 2.5 })).toThrow('retry.maxAttempts must be a whole number')
    expect(() => sagaWith({ attempts: 3 } as StepRetryPolicy)).toThrow('step charge_payment: retry.attempts is not a retry setting')
    expect(() => sagaWith({ minDelayMs: 50, maxDelayMs: 10 })).toThrow('step charge_payment: retry.minDelayMs is above retry.maxDelayMs')
  })

  it('refuses a step not made by defineStep, and a step with a missing name', () => {
    expect(() => defineSaga({ ...base, steps: [{ name: 'x' } as never] })).toThrow('step 1 was not made by defineStep')
    expect(() => defineStep({ role: 'payment', topic: { name: 't', partitions: 1 }, command: 'pay', succeeded: '', failed: 'f', compensation: { command: 'c', confirmed: 'cc' }, effectId: 'id' })).toThrow('invalid step pay: succeeded must be a non-empty string')
  })

  it('given a step with only its names, then verify and the notifier get wording derived from them', () => {
    const step = defineStep({ role: 'payment', topic: { name: 't', partitions: 1 }, command: 'pay', succeeded: 'paid', failed: 'not-paid', compensation: { command: 'unpay', confirmed: 'unpaid' }, effectId: 'pay_id' })
    expect(step.verify.double.kind).toBe('double_pay')
    expect(step.notifier.succeeded({ pay_id: 'p-1' })).toBe('pay done as p-1')
    expect(step.participant.successRate).toEqual({ env: 'PAYMENT_SUCCESS_RATE', default: 1 })
  })
})
