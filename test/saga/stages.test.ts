import { describe, expect, it } from 'vitest'

import type { Message } from '../../src/envelope.js'
import { inventory } from '../../src/order-saga/inventory.js'
import { payment } from '../../src/order-saga/payment.js'
import { CANCEL_REQUESTED, PAUSE_REQUESTED, RESUME_REQUESTED, RETRY_DUE, STEP_TIMED_OUT, decide, retryDelay, type SagaDefinition, type SagaState } from '../../src/saga/decide.js'
import { created, ctx, msg, policy } from '../services/orchestrator/given.js'
import { shipping } from './steps/shipping.js'

const T0 = 1_000_000
const base = { started: 'order.created', completed: 'order.completed', cancelled: 'order.cancelled' }
/** reserve ∥ charge, then ship. */
const parallelSaga: SagaDefinition = { ...base, steps: [inventory, payment, shipping], stages: [{ kind: 'parallel', name: 'reserve_and_charge', branches: [inventory, payment] }, { kind: 'step', step: shipping }] }
const approval = (onTimeout: 'cancel' | 'continue') => ({ name: 'approval', event: 'order.approved', timeoutMs: 60_000, onTimeout })
/** reserve, wait for order.approved, then charge. */
const awaitSaga = (onTimeout: 'cancel' | 'continue' = 'cancel'): SagaDefinition => ({
  ...base,
  steps: [inventory, payment],
  stages: [{ kind: 'step', step: inventory }, { kind: 'await', wait: approval(onTimeout) }, { kind: 'step', step: payment }],
})

const reserved = (attempt = 1) => msg('inventory.reserved', { reservation_id: 'r-1', attempt })
const charged = (attempt = 1) => msg('payment.succeeded', { payment_id: 'p-1', amount: 999, attempt })
const chargeFailed = (attempt: number, retryable = true) => msg('payment.failed', { reason: 'card declined', retryable, attempt })
const shipped = () => msg('shipping.shipped', { shipment_id: 's-1', attempt: 1 })
const shipFailed = () => msg('shipping.ship-failed', { reason: 'no courier', retryable: false, attempt: 1 })
const released = () => msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 })
const refunded = () => msg('payment.refunded', { payment_id: 'p-1', attempt: 1 })
const approved = () => msg('order.approved', { approved_by: 'ops' })

function over(def: SagaDefinition, ...history: Message[]) {
  let state: SagaState | undefined
  for (const m of history) state = decide(def, policy, state, m, ctx()).state ?? state
  return {
    state: () => state,
    when(m: Message, c = ctx()) {
      const d = decide(def, policy, state, m, c)
      return { ...d, after: d.state ?? state, sent: d.messages.map((x) => x.envelope.event_type ?? x.envelope.command_type ?? '') }
    },
  }
}

describe('a parallel stage (reserve ∥ charge, then ship)', () => {
  it('given nothing, when the order is created, then both branches\' commands go out together, each with its own attempt and timeout, recorded by name', () => {
    const d = over(parallelSaga).when(created())
    expect(d.sent).toEqual(['reserve_inventory', 'charge_payment'])
    expect(d.after).toMatchObject({ status: 'running', step: 'reserve_and_charge', branches: { reserve_inventory: { status: 'running', attempt: 1 }, charge_payment: { status: 'running', attempt: 1 } } })
    expect(d.timer).toMatchObject({ dueAt: T0 + policy.stepTimeoutMs, message: { event_type: STEP_TIMED_OUT } })
  })

  it('given both in flight, when one succeeds, then nothing moves; when the other does, then the next step', () => {
    const one = over(parallelSaga, created()).when(reserved())
    expect(one.sent).toEqual([])
    expect(one.after?.branches?.reserve_inventory?.status).toBe('done')
    expect(one.timer).toMatchObject({ message: { event_type: STEP_TIMED_OUT, payload: { step: 'charge_payment', attempt: 1 } } })
    const both = over(parallelSaga, created(), reserved()).when(charged())
    expect(both.sent).toEqual(['ship_order'])
    expect(both.after).toMatchObject({ status: 'running', step: 'ship_order' })
    expect(both.after?.branches).toBeUndefined()
    const end = over(parallelSaga, created(), reserved(), charged()).when(shipped())
    expect(end.sent).toEqual(['order.completed'])
    expect(end.messages[0]!.envelope.payload).toMatchObject({ reservation_id: 'r-1', payment_id: 'p-1', shipment_id: 's-1' })
  })

  it('given one branch done, when the other declines, then only the done one is undone and the saga ends cancelled', () => {
    const d = over(parallelSaga, created(), reserved()).when(chargeFailed(1, false))
    expect(d.sent).toEqual(['cancel_reservation'])
    expect(d.after).toMatchObject({ status: 'compensating', reason: 'card declined' })
    expect(d.after?.uncertain).toBeUndefined()
    const end = over(parallelSaga, created(), reserved(), chargeFailed(1, false)).when(released())
    expect(end.sent).toEqual(['order.cancelled'])
    expect(end.messages[0]!.envelope.payload).toEqual({ reason: 'card declined', compensated: ['reserve_inventory'] })
  })

  it('given a branch failing retryably, then it waits for its own retry while the other runs; its retry sends only its command', () => {
    const d = over(parallelSaga, created()).when(chargeFailed(1))
    expect(d.sent).toEqual([])
    expect(d.after?.branches?.charge_payment).toMatchObject({ status: 'waiting_retry', attempt: 1, due_at: T0 + retryDelay(policy, 0.5) })
    expect(d.timer).toMatchObject({ dueAt: T0 + retryDelay(policy, 0.5), message: { event_type: RETRY_DUE, payload: { step: 'charge_payment', attempt: 2 } } })
    const r = over(parallelSaga, created(), chargeFailed(1)).when(msg(RETRY_DUE, { step: 'charge_payment', attempt: 2 }))
    expect(r.sent).toEqual(['charge_payment'])
    expect(r.messages[0]!.envelope.payload.attempt).toBe(2)
    expect(r.after?.branches?.reserve_inventory).toMatchObject({ status: 'running', attempt: 1 })
  })

  it('given one branch failing for good after its retries while the other is in flight, then both are undone at once (outcome unknown), newest first', () => {
    const history = [created(), chargeFailed(1), msg(RETRY_DUE, { step: 'charge_payment', attempt: 2 }), chargeFailed(2), msg(RETRY_DUE, { step: 'charge_payment', attempt: 3 })]
    const d = over(parallelSaga, ...history).when(chargeFailed(3))
    expect(d.after).toMatchObject({ status: 'compensating', reason: 'card declined (after 3 attempts)', uncertain: ['reserve_inventory', 'charge_payment'] })
    expect(d.sent).toEqual(['refund_payment'])
    const next = over(parallelSaga, ...history, chargeFailed(3)).when(msg('payment.refunded', { payment_id: null, attempt: 1 }))
    expect(next.sent).toEqual(['cancel_reservation'])
  })

  it('given a branch that does not answer, when its timeout is read back, then that branch alone waits for a retry', () => {
    const d = over(parallelSaga, created(), charged()).when(msg(STEP_TIMED_OUT, { step: 'reserve_inventory', attempt: 1 }))
    expect(d.after?.branches).toMatchObject({ reserve_inventory: { status: 'waiting_retry', attempt: 1 }, charge_payment: { status: 'done' } })
  })

  it('given the stage done and the next step declining, then the branches are undone newest completion first, not in definition order', () => {
    const d = over(parallelSaga, created(), charged(), reserved()).when(shipFailed())
    expect(d.sent).toEqual(['cancel_reservation'])
    const next = over(parallelSaga, created(), charged(), reserved(), shipFailed()).when(released())
    expect(next.sent).toEqual(['refund_payment'])
    const end = over(parallelSaga, created(), charged(), reserved(), shipFailed(), released()).when(refunded())
    expect(end.messages[0]!.envelope.payload).toEqual({ reason: 'no courier', compensated: ['reserve_inventory', 'charge_payment'] })
  })

  it('given a parallel stage, when a cancel is requested, then the branch in flight is undone first, then the done one', () => {
    const d = over(parallelSaga, created(), reserved()).when(msg(CANCEL_REQUESTED, { reason: 'changed mind', requested_by: 'api' }))
    expect(d.sent).toEqual(['refund_payment', 'saga.cancel-accepted'])
    expect(d.after).toMatchObject({ status: 'compensating', uncertain: ['charge_payment'] })
    expect(d.after?.branches).toBeUndefined()
  })

  it('given a paused parallel stage, when the last branch succeeds, then nothing is sent; on resume the saga moves on', () => {
    const paused = [created(), reserved(), msg(PAUSE_REQUESTED, { reason: 'check', requested_by: 'ops' })]
    const d = over(parallelSaga, ...paused).when(charged())
    expect(d.sent).toEqual([])
    expect(d.timer).toBeNull()
    const r = over(parallelSaga, ...paused, charged()).when(msg(RESUME_REQUESTED, { requested_by: 'ops' }))
    expect(r.sent).toEqual(['ship_order', 'saga.resume-accepted'])
  })

  it('given a paused parallel stage whose branch failed for good while paused, when resumed, then the stage fails and compensates', () => {
    const paused = [created(), reserved(), msg(PAUSE_REQUESTED, { reason: 'check', requested_by: 'ops' }), chargeFailed(1, false)]
    const r = over(parallelSaga, ...paused).when(msg(RESUME_REQUESTED, { requested_by: 'ops' }))
    expect(r.sent).toEqual(['cancel_reservation', 'saga.resume-accepted'])
    expect(r.after?.status).toBe('compensating')
  })
})

describe('awaitEvent (reserve, wait for order.approved, then charge)', () => {
  it('given the step before done, then the saga waits: no command, a timer at the wait\'s time limit', () => {
    const d = over(awaitSaga(), created()).when(reserved())
    expect(d.sent).toEqual([])
    expect(d.after).toMatchObject({ status: 'running', step: 'approval' })
    expect(d.timer).toMatchObject({ dueAt: T0 + 60_000, message: { event_type: STEP_TIMED_OUT, payload: { step: 'approval', attempt: 1 } } })
  })

  it('given a saga waiting, when the event comes, then the next step, with the event recorded', () => {
    const d = over(awaitSaga(), created(), reserved()).when(approved())
    expect(d.sent).toEqual(['charge_payment'])
    expect(d.after?.done.map((x) => x.step)).toEqual(['reserve_inventory', 'approval'])
    expect(d.after?.done[1]?.result).toEqual({ approved_by: 'ops' })
  })

  it('given the event came before the saga reached its step, then it is kept, and the saga passes the wait at once', () => {
    const early = over(awaitSaga(), created()).when(approved())
    expect(early.sent).toEqual([])
    expect(early.after?.received?.['order.approved']).toMatchObject({ payload: { approved_by: 'ops' } })
    const d = over(awaitSaga(), created(), approved()).when(reserved())
    expect(d.sent).toEqual(['charge_payment'])
    expect(d.after?.received?.['order.approved']).toBeUndefined()
  })

  it('given a saga waiting, when the time limit passes and onTimeout is cancel, then the done steps are compensated and the reason names the event', () => {
    const d = over(awaitSaga('cancel'), created(), reserved()).when(msg(STEP_TIMED_OUT, { step: 'approval', attempt: 1 }))
    expect(d.sent).toEqual(['cancel_reservation'])
    const end = over(awaitSaga('cancel'), created(), reserved(), msg(STEP_TIMED_OUT, { step: 'approval', attempt: 1 })).when(released())
    expect(end.messages[0]!.envelope.payload).toEqual({ reason: 'no order.approved within 60000 ms', compensated: ['reserve_inventory'] })
  })

  it('given a saga waiting, when the time limit passes and onTimeout is continue, then the next step without the event', () => {
    expect(over(awaitSaga('continue'), created(), reserved()).when(msg(STEP_TIMED_OUT, { step: 'approval', attempt: 1 })).sent).toEqual(['charge_payment'])
  })

  it('given a saga that ended or already had the event, when it comes (again), then nothing changes and it is said', () => {
    const ended = over(awaitSaga(), created(), reserved(), approved(), charged()).when(approved())
    expect(ended.state).toBeUndefined()
    expect(ended.notices[0]?.msg).toMatch(/came already|after the saga ended/)
    const completed = over(awaitSaga(), created(), reserved(), approved(), charged())
    expect(completed.state()?.status).toBe('completed')
    const twice = over(awaitSaga(), created(), approved()).when(approved())
    expect(twice.state).toBeUndefined()
    expect(twice.notices[0]?.msg).toMatch(/came already/)
  })

  it('given a saga paused at the wait, when the event comes, then it is recorded; on resume the next step', () => {
    const paused = [created(), reserved(), msg(PAUSE_REQUESTED, { reason: 'x', requested_by: 'ops' })]
    expect(over(awaitSaga(), ...paused).when(approved()).sent).toEqual([])
    expect(over(awaitSaga(), ...paused, approved()).when(msg(RESUME_REQUESTED, { requested_by: 'ops' })).sent).toEqual(['charge_payment', 'saga.resume-accepted'])
  })

  it('given a saga waiting, when a cancel is requested, then the wait has nothing to undo and the done steps are compensated', () => {
    const d = over(awaitSaga(), created(), reserved()).when(msg(CANCEL_REQUESTED, { reason: 'x', requested_by: 'api' }))
    expect(d.sent).toEqual(['cancel_reservation', 'saga.cancel-accepted'])
    expect(d.after?.uncertain).toBeUndefined()
  })
})
