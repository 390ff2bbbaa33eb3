import { describe, expect, it } from 'vitest'

import { RETRY_DUE, STEP_TIMED_OUT, retryDelay } from '../../../src/services/orchestrator/saga.js'
import { created, ctx, given, msg, policy } from './given.js'

const reserved = (attempt = 1) => msg('inventory.reserved', { reservation_id: 'r-1', attempt })
const charged = (attempt = 1) => msg('payment.succeeded', { payment_id: 'p-1', amount: 999, attempt })
const paymentFailed = (attempt: number, retryable = true) => msg('payment.failed', { reason: 'card declined', retryable, attempt })
const retryDue = (step: string, attempt: number) => msg(RETRY_DUE, { step, attempt })

describe('order saga: happy path', () => {
  it('given nothing, when order.created, then reserve_inventory attempt 1 and a step timeout', () => {
    const d = given().when(created())
    expect(d.sent).toEqual([{ topic: 'inventoryCommands', type: 'reserve_inventory', payload: expect.objectContaining({ attempt: 1, amount: 999 }) }])
    expect(d.after).toMatchObject({ status: 'running', step: 'reserve_inventory', attempt: 1 })
    expect(d.timer).toMatchObject({ dueAt: 1_000_000 + policy.stepTimeoutMs, message: { event_type: STEP_TIMED_OUT, payload: { step: 'reserve_inventory', attempt: 1 } } })
  })

  it('given created, when inventory.reserved, then charge_payment attempt 1', () => {
    const d = given(created()).when(reserved())
    expect(d.sent).toEqual([{ topic: 'paymentCommands', type: 'charge_payment', payload: expect.objectContaining({ attempt: 1, amount: 999 }) }])
    expect(d.after).toMatchObject({ status: 'running', step: 'charge_payment', done: [{ step: 'reserve_inventory', result: { reservation_id: 'r-1' } }] })
  })

  it('given created and reserved, when payment.succeeded, then order.completed and the timer cleared', () => {
    const d = given(created(), reserved()).when(charged())
    expect(d.sent).toEqual([{ topic: 'orderEvents', type: 'order.completed', payload: expect.objectContaining({ reservation_id: 'r-1', payment_id: 'p-1' }) }])
    expect(d.after?.status).toBe('completed')
    expect(d.timer).toBeNull()
  })

  it('given a completed saga, when any reply repeats, then nothing is sent', () => {
    const history = [created(), reserved(), charged()]
    expect(given(...history).when(reserved()).sent).toEqual([])
    expect(given(...history).when(charged()).sent).toEqual([])
    expect(given(...history).when(created()).sent).toEqual([])
    expect(given(...history).when(msg('order.completed', {})).sent).toEqual([])
  })

  it('given nothing, when a reply arrives for an unknown saga, then nothing happens', () => {
    const d = given().when(reserved())
    expect(d.sent).toEqual([])
    expect(d.state).toBeUndefined()
  })

  it('given anything, when an unknown event type arrives, then it is rejected (dead-lettered)', () => {
    expect(given(created()).when(msg('order.teleported')).reject).toMatch(/unknown event type/)
  })
})

describe('order saga: failures, retries, compensation', () => {
  it('given created, when inventory.reserve-failed (not retryable), then order.cancelled at once and nothing charged', () => {
    const d = given(created()).when(msg('inventory.reserve-failed', { reason: 'out of stock', retryable: false, attempt: 1 }))
    expect(d.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: 'out of stock', compensated: [] } }])
    expect(d.after?.status).toBe('cancelled')
    expect(d.timer).toBeNull()
  })

  it('given reserved, when payment.failed (retryable) on attempt 1, then a retry is scheduled within the bounds and nothing is sent yet', () => {
    const d = given(created(), reserved()).when(paymentFailed(1), ctx(2_000_000, 0.25))
    expect(d.sent).toEqual([])
    expect(d.after).toMatchObject({ status: 'waiting_retry', step: 'charge_payment', attempt: 1 })
    expect(d.timer?.dueAt).toBe(2_000_000 + retryDelay(policy, 0.25))
    expect(d.timer?.message).toMatchObject({ event_type: RETRY_DUE, payload: { step: 'charge_payment', attempt: 2 } })
  })

  it('retry delays stay within [min, max] for any random draw', () => {
    for (const r of [0, 0.001, 0.5, 0.999999]) {
      const delay = retryDelay(policy, r)
      expect(delay).toBeGreaterThanOrEqual(policy.minDelayMs)
      expect(delay).toBeLessThanOrEqual(policy.maxDelayMs)
    }
  })

  it('given a retry waiting, when the retry is due, then charge_payment attempt 2', () => {
    const d = given(created(), reserved(), paymentFailed(1)).when(retryDue('charge_payment', 2))
    expect(d.sent).toEqual([{ topic: 'paymentCommands', type: 'charge_payment', payload: expect.objectContaining({ attempt: 2 }) }])
    expect(d.after).toMatchObject({ status: 'running', attempt: 2 })
  })

  it('given two failed attempts, when attempt 3 succeeds, then order.completed', () => {
    const d = given(created(), reserved(), paymentFailed(1), retryDue('charge_payment', 2), paymentFailed(2), retryDue('charge_payment', 3)).when(charged(3))
    expect(d.sent.map((s) => s.type)).toEqual(['order.completed'])
  })

  it('given attempt 3 running, when it fails too, then cancel_reservation (compensation) and no final event yet', () => {
    const d = given(created(), reserved(), paymentFailed(1), retryDue('charge_payment', 2), paymentFailed(2), retryDue('charge_payment', 3)).when(paymentFailed(3))
    expect(d.sent).toEqual([{ topic: 'inventoryCommands', type: 'cancel_reservation', payload: expect.objectContaining({ reservation_id: 'r-1', attempt: 1 }) }])
    expect(d.after).toMatchObject({ status: 'compensating', step: 'reserve_inventory', reason: 'card declined (after 3 attempts)' })
  })

  it('given compensation under way, when the reservation is cancelled, then exactly one order.cancelled naming the reason', () => {
    const history = [created(), reserved(), paymentFailed(1, false)]
    const d = given(...history).when(msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 }))
    expect(d.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: 'card declined', compensated: ['reserve_inventory'] } }])
    const again = given(...history, msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 })).when(msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 }))
    expect(again.sent).toEqual([])
  })

  it('given a non-retryable payment failure, then compensation starts at once (no retry)', () => {
    const d = given(created(), reserved()).when(paymentFailed(1, false))
    expect(d.sent.map((s) => s.type)).toEqual(['cancel_reservation'])
    expect(d.timer?.message.event_type).toBe(STEP_TIMED_OUT)
  })

  it('a stale failure from an older attempt changes nothing', () => {
    const d = given(created(), reserved(), paymentFailed(1), retryDue('charge_payment', 2)).when(paymentFailed(1))
    expect(d.sent).toEqual([])
    expect(d.state).toBeUndefined()
  })

  it('a retry timer that is not the current one changes nothing', () => {
    expect(given(created(), reserved(), paymentFailed(1)).when(retryDue('charge_payment', 3)).sent).toEqual([])
  })

  it('given a step with no reply, when its timeout fires, then it counts as a retryable failure', () => {
    const d = given(created(), reserved()).when(msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 1 }))
    expect(d.after).toMatchObject({ status: 'waiting_retry', attempt: 1 })
    expect(d.timer?.message.event_type).toBe(RETRY_DUE)
  })

  it('given compensation without a reply, when its timeout fires, then the compensation is sent again', () => {
    const d = given(created(), reserved(), paymentFailed(1, false)).when(msg(STEP_TIMED_OUT, { step: 'reserve_inventory', attempt: 1 }))
    expect(d.sent).toEqual([{ topic: 'inventoryCommands', type: 'cancel_reservation', payload: expect.objectContaining({ reservation_id: 'r-1', attempt: 2 }) }])
  })

  it('given a cancelled saga, when a late payment.succeeded arrives, then it is refunded exactly once', () => {
    const history = [created(), reserved(), paymentFailed(1, false), msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 })]
    expect(given(...history).state()?.status).toBe('cancelled')
    const late = charged(1)
    const d = given(...history).when(late)
    expect(d.sent).toEqual([{ topic: 'paymentCommands', type: 'refund_payment', payload: expect.objectContaining({ payment_id: 'p-1', amount: 999 }) }])
    expect(given(...history, late).when(charged(1)).sent).toEqual([])
    expect(given(...history, late).when(msg('payment.refunded', { payment_id: 'p-1', attempt: 1 })).sent).toEqual([])
  })

  it('given compensation of the reservation under way, when a late charge succeeds, then it is refunded and the reservation compensation goes on once', () => {
    const history = [created(), reserved(), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 1 })]
    // Exhaust the attempts by timeouts, so compensation starts while a charge may still land.
    const exhausted = [...history, retryDue('charge_payment', 2), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 2 }), retryDue('charge_payment', 3), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 3 })]
    expect(given(...exhausted).state()).toMatchObject({ status: 'compensating', step: 'reserve_inventory' })
    const d = given(...exhausted).when(charged(2))
    expect(d.sent.map((s) => s.type)).toEqual(['refund_payment'])
    const done = given(...exhausted, charged(2)).when(msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 }))
    expect(done.sent.map((s) => s.type)).toEqual(['order.cancelled'])
  })

  it('given a saga cancelled after inventory timed out, when a late inventory.reserved arrives, then the reservation is released once', () => {
    const timedOut = (attempt: number) => msg(STEP_TIMED_OUT, { step: 'reserve_inventory', attempt })
    const history = [created(), timedOut(1), retryDue('reserve_inventory', 2), timedOut(2), retryDue('reserve_inventory', 3), timedOut(3)]
    const cancelled = given(...history)
    expect(cancelled.state()).toMatchObject({ status: 'cancelled', reason: expect.stringMatching(/no reply to reserve_inventory/) })
    const late = reserved(2)
    const d = given(...history).when(late)
    expect(d.sent).toEqual([{ topic: 'inventoryCommands', type: 'cancel_reservation', payload: expect.objectContaining({ reservation_id: 'r-1' }) }])
    expect(given(...history, late).when(reserved(3)).sent).toEqual([])
  })

  it('given a saga rebuilt from the log (no timers replayed), when later replies and the final event arrive, then it ends as the log says, sending nothing', () => {
    // What replay feeds: only order.events — the retry timers in between are not there.
    const log = [created(), reserved(), paymentFailed(1), paymentFailed(2), paymentFailed(3), msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 })]
    const rebuilt = given(...log)
    expect(rebuilt.state()).toMatchObject({ status: 'cancelled', compensated: ['reserve_inventory'] })
    const final = given(...log).when(msg('order.cancelled', { reason: 'card declined (after 3 attempts)' }))
    expect(final.sent).toEqual([])
  })

  it('given a saga still waiting for a retry in this state, when order.cancelled is on the log, then it is settled and its timer cleared', () => {
    const d = given(created(), reserved(), paymentFailed(1)).when(msg('order.cancelled', { reason: 'decided elsewhere' }))
    expect(d.after).toMatchObject({ status: 'cancelled', reason: 'decided elsewhere' })
    expect(d.timer).toBeNull()
    expect(d.sent).toEqual([])
  })
})
