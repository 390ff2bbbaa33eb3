import { describe, expect, it } from 'vitest'

import { CANCEL_ACCEPTED, CANCEL_IGNORED, CANCEL_REQUESTED, RETRY_ACCEPTED, RETRY_DUE, RETRY_REFUSED, RETRY_REQUESTED, SAGA_STUCK, STEP_TIMED_OUT, cancelledByRequest, retryDelay } from '../../../src/saga/decide.js'
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

  it('given attempt 3 running, when it fails too (retryably: its outcome is unknown), then refund_payment for that attempt first, and no final event yet', () => {
    const history = [created(), reserved(), paymentFailed(1), retryDue('charge_payment', 2), paymentFailed(2), retryDue('charge_payment', 3)]
    const d = given(...history).when(paymentFailed(3))
    expect(d.sent).toEqual([{ topic: 'paymentCommands', type: 'refund_payment', payload: { attempt: 1 } }])
    expect(d.after).toMatchObject({ status: 'compensating', step: 'charge_payment', uncertain: ['charge_payment'], reason: 'card declined (after 3 attempts)' })
    // The participant confirms it with nothing to undo; then the reservation, then order.cancelled.
    const next = given(...history, paymentFailed(3)).when(msg('payment.refunded', { payment_id: null, note: 'nothing to undo', attempt: 1 }))
    expect(next.sent).toEqual([{ topic: 'inventoryCommands', type: 'cancel_reservation', payload: expect.objectContaining({ reservation_id: 'r-1', attempt: 1 }) }])
  })

  it('given a step that fails for good (not retryable), then it is not undone: the participant said it did nothing', () => {
    const d = given(created(), reserved()).when(paymentFailed(1, false))
    expect(d.sent.map((x) => x.type)).toEqual(['cancel_reservation'])
    expect(d.after?.uncertain).toBeUndefined()
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

  it('given every charge timed out (outcome unknown), then the charge is undone first; a late charge sends nothing more, its refund confirms it, then the reservation, once each', () => {
    const history = [created(), reserved(), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 1 })]
    // Exhaust the attempts by timeouts, so compensation starts while a charge may still land.
    const exhausted = [...history, retryDue('charge_payment', 2), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 2 }), retryDue('charge_payment', 3), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 3 })]
    expect(given(...exhausted).state()).toMatchObject({ status: 'compensating', step: 'charge_payment', uncertain: ['charge_payment'] })
    expect(given(...history, retryDue('charge_payment', 2), msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 2 }), retryDue('charge_payment', 3)).when(msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 3 })).sent.map((s) => s.type)).toEqual(['refund_payment'])
    const d = given(...exhausted).when(charged(2))
    expect(d.sent).toEqual([])
    const refunded = msg('payment.refunded', { payment_id: 'p-1', attempt: 1 })
    expect(given(...exhausted, charged(2)).when(refunded).sent.map((s) => s.type)).toEqual(['cancel_reservation'])
    const done = given(...exhausted, charged(2), refunded).when(msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 }))
    expect(done.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: expect.stringMatching(/no reply to charge_payment .*after 3 attempts/), compensated: ['charge_payment', 'reserve_inventory'] } }])
  })

  it('given inventory timed out on every attempt, then its reservation is released at once (its outcome is unknown); a late inventory.reserved sends nothing more', () => {
    const timedOut = (attempt: number) => msg(STEP_TIMED_OUT, { step: 'reserve_inventory', attempt })
    const history = [created(), timedOut(1), retryDue('reserve_inventory', 2), timedOut(2), retryDue('reserve_inventory', 3)]
    const d = given(...history).when(timedOut(3))
    expect(d.sent).toEqual([{ topic: 'inventoryCommands', type: 'cancel_reservation', payload: { attempt: 1 } }])
    expect(d.after).toMatchObject({ status: 'compensating', step: 'reserve_inventory', reason: expect.stringMatching(/no reply to reserve_inventory/) })
    const late = reserved(2)
    expect(given(...history, timedOut(3)).when(late).sent).toEqual([])
    expect(given(...history, timedOut(3), late).when(reserved(3)).sent).toEqual([])
    const done = given(...history, timedOut(3), late).when(msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 }))
    expect(done.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: expect.stringMatching(/no reply to reserve_inventory/), compensated: ['reserve_inventory'] } }])
  })

  it('given a saga rebuilt from the log (no timers replayed), when later replies and the final event arrive, then it ends as the log says, sending nothing', () => {
    // What replay feeds: only order.events — the retry timers in between are not there.
    const log = [created(), reserved(), paymentFailed(1), paymentFailed(2), paymentFailed(3), msg('payment.refunded', { payment_id: null, attempt: 1 }), msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt: 1 })]
    const rebuilt = given(...log)
    expect(rebuilt.state()).toMatchObject({ status: 'cancelled', compensated: ['charge_payment', 'reserve_inventory'] })
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

describe('order saga: a compensation that is never confirmed (stuck), and `saga retry`', () => {
  const compensating = [created(), reserved(), paymentFailed(1, false)]
  const compensationTimedOut = (attempt: number) => msg(STEP_TIMED_OUT, { step: 'reserve_inventory', attempt })
  // policy.maxCompensationAttempts is 3: attempts 1 and 2 time out and are resent; attempt 3 is the last.
  const exhausted = [...compensating, compensationTimedOut(1), compensationTimedOut(2)]
  const stuck = [...exhausted, compensationTimedOut(3)]
  const retryRequested = (payload: Record<string, unknown> = { step: 'reserve_inventory', attempt: 3 }) => msg(RETRY_REQUESTED, payload)
  const released = (attempt: number) => msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt })

  it('given a compensation resent until its last attempt, when that times out too, then stuck with a reason, saga.stuck on the log, no final event and no timer', () => {
    const d = given(...exhausted).when(compensationTimedOut(3))
    expect(d.after).toMatchObject({ status: 'stuck', step: 'reserve_inventory', attempt: 3, stuck_reason: 'compensation of reserve_inventory (cancel_reservation) not confirmed after 3 attempts' })
    // The reason the order is being cancelled is kept for the order.cancelled that will follow.
    expect(d.after?.reason).toBe('card declined')
    expect(d.sent).toEqual([{ topic: 'orderEvents', type: SAGA_STUCK, payload: { step: 'reserve_inventory', attempt: 3, reason: d.after?.stuck_reason } }])
    expect(d.timer).toBeNull()
    expect(d.notices).toEqual([expect.objectContaining({ level: 'error', msg: expect.stringMatching(/STUCK.*saga retry/) })])
  })

  it('given a compensation with no reply, then it is sent exactly maxCompensationAttempts times before the saga is stuck', () => {
    const inputs = [...compensating, ...[1, 2, 3, 4].map(compensationTimedOut)]
    const sent: string[] = []
    inputs.forEach((m, i) => sent.push(...given(...inputs.slice(0, i)).when(m).sent.map((x) => x.type)))
    expect(sent.filter((t) => t === 'cancel_reservation')).toHaveLength(policy.maxCompensationAttempts)
    expect(sent.at(-1)).toBe(SAGA_STUCK)
    expect(sent).not.toContain('order.cancelled')
  })

  it('given a stuck saga, when its old timeout fires again, then nothing (it holds no timer and resends nothing)', () => {
    const d = given(...stuck).when(compensationTimedOut(3))
    expect(d.sent).toEqual([])
    expect(d.state).toBeUndefined()
  })

  it('given a stuck saga, when a retry is requested, then compensating again: the compensation resent as the next attempt, a timer, and the request accepted', () => {
    const request = retryRequested()
    const d = given(...stuck).when(request)
    expect(d.after).toMatchObject({ status: 'compensating', step: 'reserve_inventory', attempt: 4, budget_from: 4 })
    expect(d.after?.stuck_reason).toBeUndefined()
    expect(d.sent).toEqual([
      { topic: 'inventoryCommands', type: 'cancel_reservation', payload: expect.objectContaining({ reservation_id: 'r-1', attempt: 4 }) },
      { topic: 'control', type: RETRY_ACCEPTED, payload: { status: 'compensating', step: 'reserve_inventory', attempt: 4, attempts: policy.maxCompensationAttempts } },
    ])
    expect(d.messages[1]!.envelope.causation_id).toBe(request.message_id)
    expect(d.timer).toMatchObject({ message: { event_type: STEP_TIMED_OUT, payload: { step: 'reserve_inventory', attempt: 4 } } })
  })

  it('given a retried saga, then its budget is fresh: resent up to maxCompensationAttempts more times, then stuck again', () => {
    const retried = [...stuck, retryRequested()]
    expect(given(...retried).when(compensationTimedOut(4)).sent.map((x) => x.type)).toEqual(['cancel_reservation'])
    expect(given(...retried, compensationTimedOut(4)).when(compensationTimedOut(5)).sent.map((x) => x.type)).toEqual(['cancel_reservation'])
    const again = given(...retried, compensationTimedOut(4), compensationTimedOut(5)).when(compensationTimedOut(6))
    expect(again.after).toMatchObject({ status: 'stuck', attempt: 6, stuck_reason: expect.stringMatching(/after 3 attempts/) })
  })

  it('given a retried saga, when the confirmation arrives, then order.cancelled with the original reason', () => {
    const d = given(...stuck, retryRequested()).when(released(4))
    expect(d.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: 'card declined', compensated: ['reserve_inventory'] } }])
    expect(d.timer).toBeNull()
  })

  it('given a stuck saga, when a late confirmation arrives (the participant is back and answers its backlog), then it is settled without a retry', () => {
    const d = given(...stuck).when(released(1))
    expect(d.after).toMatchObject({ status: 'cancelled', compensated: ['reserve_inventory'] })
    expect(d.after?.stuck_reason).toBeUndefined()
    expect(d.sent.map((x) => x.type)).toEqual(['order.cancelled'])
  })

  it.each([
    ['running', [created()]],
    ['waiting_retry', [created(), reserved(), paymentFailed(1)]],
    ['compensating', compensating],
    ['cancelled', [...compensating, released(1)]],
  ])('given a %s saga, when a retry is requested, then nothing changes and the request is refused with the reason', (status, history) => {
    const d = given(...history).when(retryRequested())
    expect(d.state).toBeUndefined()
    expect(d.timer).toBeUndefined()
    expect(d.sent).toEqual([{ topic: 'control', type: RETRY_REFUSED, payload: expect.objectContaining({ status, reason: `the saga is ${status}, not stuck; nothing to retry` }) }])
  })

  it('given no saga, when a retry is requested, then it is refused, not dead-lettered', () => {
    const d = given().when(retryRequested())
    expect(d.reject).toBeUndefined()
    expect(d.sent).toEqual([{ topic: 'control', type: RETRY_REFUSED, payload: { reason: 'no saga for this order at the orchestrator' } }])
  })

  it('given a retry already taken, when the same request is seen again after the saga moved on, then it is refused: one request resends once', () => {
    expect(given(...stuck, retryRequested()).when(retryRequested()).sent.map((x) => x.type)).toEqual([RETRY_REFUSED])
  })

  it('given a stuck saga, when its own saga.stuck comes back from the log, then nothing', () => {
    const echo = given(...exhausted).when(compensationTimedOut(3)).messages[0]!.envelope
    const d = given(...stuck).when({ ...echo, type: SAGA_STUCK })
    expect(d.state).toBeUndefined()
    expect(d.sent).toEqual([])
  })

  it('given a saga rebuilt from the log (no timers replayed), when saga.stuck is on the log, then it is stuck at that attempt, and a retry resends the same attempt as the original did', () => {
    // What replay feeds: order.events only, so the compensation's timeouts are not there.
    const stuckEvent = msg(SAGA_STUCK, { step: 'reserve_inventory', attempt: 3, reason: 'compensation of reserve_inventory (cancel_reservation) not confirmed after 3 attempts' })
    const rebuilt = given(...compensating, stuckEvent)
    expect(rebuilt.state()).toMatchObject({ status: 'stuck', attempt: 3, stuck_reason: expect.stringMatching(/after 3 attempts/) })
    const live = given(...stuck).when(retryRequested())
    expect(rebuilt.when(retryRequested()).sent).toEqual(live.sent)
  })
})

describe('order saga: a cancel request from outside (saga.cancel-requested)', () => {
  const cancelRequested = (reason: unknown = 'customer changed their mind', requested_by = 'api') => msg(CANCEL_REQUESTED, { reason, requested_by })
  const released = (attempt = 1) => msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt })
  const noCharge = (attempt = 1) => msg('payment.refunded', { payment_id: null, note: 'nothing to undo', attempt })
  const reason = cancelledByRequest('customer changed their mind')

  it('given a retry waiting, when a cancel is requested, then no retry: the step waiting (outcome unknown) is undone at once, its timer replaced, and the request accepted', () => {
    const request = cancelRequested()
    const d = given(created(), reserved(), paymentFailed(1)).when(request)
    expect(d.sent).toEqual([
      { topic: 'paymentCommands', type: 'refund_payment', payload: { attempt: 1 } },
      { topic: 'control', type: CANCEL_ACCEPTED, payload: { status: 'compensating', step: 'charge_payment', attempt: 1, reason } },
    ])
    expect(d.messages[1]!.envelope.causation_id).toBe(request.message_id)
    expect(d.after).toMatchObject({ status: 'compensating', step: 'charge_payment', uncertain: ['charge_payment'], reason, cancel_requested: { reason: 'customer changed their mind', requested_by: 'api', request_id: request.message_id } })
    expect(d.timer).toMatchObject({ message: { event_type: STEP_TIMED_OUT, payload: { step: 'charge_payment', attempt: 1 } } })
  })

  it('given a cancel during a retry wait, when the undos are confirmed newest first, then order.cancelled "cancelled by request: …" naming both', () => {
    const history = [created(), reserved(), paymentFailed(1), cancelRequested()]
    expect(given(...history).when(retryDue('charge_payment', 2)).sent).toEqual([])
    const next = given(...history).when(noCharge())
    expect(next.sent).toEqual([{ topic: 'inventoryCommands', type: 'cancel_reservation', payload: expect.objectContaining({ reservation_id: 'r-1', attempt: 1 }) }])
    const done = given(...history, noCharge()).when(released())
    expect(done.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason, compensated: ['charge_payment', 'reserve_inventory'] } }])
    expect(done.after?.status).toBe('cancelled')
    expect(done.timer).toBeNull()
  })

  it('given a step in flight, when a cancel is requested, then its undo goes out at once; a late success of that step sends nothing more, and the saga ends cancelled', () => {
    const history = [created(), reserved()]
    const d = given(...history).when(cancelRequested())
    expect(d.sent.map((x) => x.type)).toEqual(['refund_payment', CANCEL_ACCEPTED])
    // The act got there before its undo: the participant undoes the effect it made, once.
    const late = given(...history, cancelRequested()).when(charged(1))
    expect(late.sent).toEqual([])
    expect(late.after).toMatchObject({ status: 'compensating', step: 'charge_payment' })
    const refunded = msg('payment.refunded', { payment_id: 'p-1', attempt: 1 })
    expect(given(...history, cancelRequested(), charged(1)).when(refunded).sent.map((x) => x.type)).toEqual(['cancel_reservation'])
    expect(given(...history, cancelRequested(), charged(1), refunded).when(released()).sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason, compensated: ['charge_payment', 'reserve_inventory'] } }])
  })

  it('given a step in flight and cancelled, when its late failure (declined after its undo) arrives, then nothing', () => {
    const d = given(created(), reserved(), cancelRequested()).when(msg('payment.failed', { reason: 'charge_payment came after its undo: not carried out', retryable: false, attempt: 1 }))
    expect(d.sent).toEqual([])
    expect(d.state).toBeUndefined()
  })

  it('given the first step in flight, when a cancel is requested, then only that step is undone, then order.cancelled', () => {
    const d = given(created()).when(cancelRequested('fraud check said stop', 'sagactl saga cancel'))
    expect(d.sent.map((x) => x.type)).toEqual(['cancel_reservation', CANCEL_ACCEPTED])
    const done = given(created(), cancelRequested('fraud check said stop')).when(msg('inventory.reservation-cancelled', { reservation_id: null, note: 'nothing to undo', attempt: 1 }))
    expect(done.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: cancelledByRequest('fraud check said stop'), compensated: ['reserve_inventory'] } }])
  })

  it('given a cancel with no reason, then the reason says none was given, and the requester is "unknown" when not named', () => {
    const d = given(created()).when(msg(CANCEL_REQUESTED, {}))
    expect(d.after).toMatchObject({ reason: cancelledByRequest('no reason given'), cancel_requested: { reason: 'no reason given', requested_by: 'unknown' } })
  })

  it.each([
    ['completed', [created(), reserved(), charged()]],
    ['cancelled', [created(), reserved(), paymentFailed(1, false), released()]],
  ])('given a %s saga, when a cancel is requested, then nothing changes and the request is ignored with the reason', (status, history) => {
    const d = given(...history).when(cancelRequested())
    expect(d.state).toBeUndefined()
    expect(d.timer).toBeUndefined()
    expect(d.sent).toEqual([{ topic: 'control', type: CANCEL_IGNORED, payload: expect.objectContaining({ status, reason: `the saga already ended: ${status}; nothing changed` }) }])
    expect(d.notices).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^cancel request ignored/) })])
  })

  it('given a saga already compensating after a failure, when a cancel is requested, then it is ignored: the saga ends cancelled with its own reason', () => {
    const d = given(created(), reserved(), paymentFailed(1, false)).when(cancelRequested())
    expect(d.state).toBeUndefined()
    expect(d.sent).toEqual([{ topic: 'control', type: CANCEL_IGNORED, payload: expect.objectContaining({ status: 'compensating', reason: 'the saga is already compensating (card declined); it ends cancelled' }) }])
  })

  it('given a cancel already taken, when the same cancel comes again (a second request, or after the end), then one cancellation', () => {
    const once = [created(), reserved(), paymentFailed(1), cancelRequested()]
    const again = given(...once).when(cancelRequested())
    expect(again.state).toBeUndefined()
    expect(again.sent.map((x) => x.type)).toEqual([CANCEL_IGNORED])
    const ended = [...once, noCharge(), released()]
    expect(given(...ended).state()?.status).toBe('cancelled')
    expect(given(...ended).when(cancelRequested()).sent.map((x) => x.type)).toEqual([CANCEL_IGNORED])
  })

  it('given no saga, when a cancel is requested, then it is ignored, not dead-lettered', () => {
    const d = given().when(cancelRequested())
    expect(d.reject).toBeUndefined()
    expect(d.sent).toEqual([{ topic: 'control', type: CANCEL_IGNORED, payload: { reason: 'no saga for this order at the orchestrator' } }])
  })

  it('given a cancel racing the final reply, then the one first in the log wins', () => {
    // The last reply first: completed, and the cancel changes nothing.
    expect(given(created(), reserved(), charged()).when(cancelRequested()).sent.map((x) => x.type)).toEqual([CANCEL_IGNORED])
    // The cancel first: the success that follows is undone with the rest, and the saga ends cancelled.
    const d = given(created(), reserved(), cancelRequested()).when(charged())
    expect(d.sent).toEqual([])
    expect(d.after?.status).toBe('compensating')
  })

  it('given a saga rebuilt from the log (no timers replayed), then the cancel and its confirmations settle it the same way', () => {
    const log = [created(), reserved(), paymentFailed(1), cancelRequested(), noCharge(), released()]
    expect(given(...log).state()).toMatchObject({ status: 'cancelled', reason, compensated: ['charge_payment', 'reserve_inventory'] })
    expect(given(...log).when(msg('order.cancelled', { reason })).sent).toEqual([])
  })
})
