import { describe, expect, it } from 'vitest'

import type { Message } from '../../src/envelope.js'
import type { DecideContext } from '../../src/runtime/role.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import {
  CANCEL_ACCEPTED,
  CANCEL_REQUESTED,
  DEADLINE_PASSED,
  DEADLINE_PASSED_REASON,
  PAUSE_ACCEPTED,
  PAUSE_IGNORED,
  PAUSE_REQUESTED,
  RESUME_ACCEPTED,
  RESUME_IGNORED,
  RESUME_REQUESTED,
  RETRY_DUE,
  STEP_TIMED_OUT,
  decide,
  retryDelay,
  type SagaDefinition,
  type SagaState,
} from '../../src/saga/decide.js'
import { created, ctx, given, msg, policy } from '../services/orchestrator/given.js'

const T0 = 1_000_000
const reserved = (attempt = 1) => msg('inventory.reserved', { reservation_id: 'r-1', attempt })
const charged = (attempt = 1) => msg('payment.succeeded', { payment_id: 'p-1', amount: 999, attempt })
const paymentFailed = (attempt: number, retryable = true) => msg('payment.failed', { reason: 'card declined', retryable, attempt })
const released = (attempt = 1) => msg('inventory.reservation-cancelled', { reservation_id: 'r-1', attempt })
const noCharge = (attempt = 1) => msg('payment.refunded', { payment_id: null, note: 'nothing to undo', attempt })
const pause = (reason: unknown = 'fraud check', requested_by = 'sagactl saga pause') => msg(PAUSE_REQUESTED, { reason, requested_by })
const resume = () => msg(RESUME_REQUESTED, { requested_by: 'sagactl saga resume' })
const at = (now: number) => ctx(now)
const firstRetryAt = T0 + retryDelay(policy, 0.5)

/** given/when over a definition of our own (a deadline), each message at its own time. */
function over(def: SagaDefinition, ...history: [Message, number][]) {
  let state: SagaState | undefined
  for (const [m, now] of history) state = decide(def, policy, state, m, at(now)).state ?? state
  return {
    state: () => state,
    when: (m: Message, c: DecideContext) => {
      const d = decide(def, policy, state, m, c)
      return { ...d, after: d.state ?? state, sent: d.messages.map((x) => ({ topic: x.topic, type: x.envelope.event_type ?? x.envelope.command_type ?? '' })) }
    },
  }
}

describe('pause (saga.pause-requested)', () => {
  it('given a step in flight, when a pause is requested, then no command, the step timer is put aside, the request accepted and the pause recorded', () => {
    const request = pause()
    const d = given(created()).when(request)
    expect(d.sent).toEqual([{ topic: 'control', type: PAUSE_ACCEPTED, payload: { status: 'paused', step: 'reserve_inventory', attempt: 1, reason: 'fraud check' } }])
    expect(d.messages[0]!.envelope.causation_id).toBe(request.message_id)
    expect(d.timer).toBeNull()
    expect(d.after).toMatchObject({ status: 'paused', due_at: T0 + policy.stepTimeoutMs, paused: { reason: 'fraud check', requested_by: 'sagactl saga pause', was: 'running', request_id: request.message_id } })
  })

  it('given a paused saga, when its step succeeds, then the reply is recorded and no next command goes out; on resume the saga moves on', () => {
    const paused = [created(), pause()]
    const d = given(...paused).when(reserved())
    expect(d.sent).toEqual([])
    expect(d.after).toMatchObject({ status: 'paused', done: [{ step: 'reserve_inventory' }] })
    const r = given(...paused, reserved()).when(resume())
    expect(r.sent.map((x) => x.type)).toEqual(['charge_payment', RESUME_ACCEPTED])
    expect(r.after).toMatchObject({ status: 'running', step: 'charge_payment', attempt: 1, resumed: { requested_by: 'sagactl saga resume' } })
    expect(r.after?.paused).toBeUndefined()
  })

  it('given a paused retry wait, when its retry falls due, then no retry; on resume before the due time, the retry is due when it was', () => {
    const paused = [created(), reserved(), paymentFailed(1), pause()]
    expect(given(...paused).state()?.paused?.was).toBe('waiting_retry')
    expect(given(...paused).when(msg(RETRY_DUE, { step: 'charge_payment', attempt: 2 })).sent).toEqual([])
    const r = given(...paused).when(resume(), at(T0 + 1))
    expect(r.sent.map((x) => x.type)).toEqual([RESUME_ACCEPTED])
    expect(r.timer).toMatchObject({ dueAt: firstRetryAt, message: { event_type: RETRY_DUE, payload: { step: 'charge_payment', attempt: 2 } } })
    expect(r.after?.status).toBe('waiting_retry')
  })

  it('given a paused step whose timeout passed while paused, when resumed, then the timeout is due at once, and read back it is handled as a timeout', () => {
    const late = T0 + policy.stepTimeoutMs + 5_000
    const r = given(created(), reserved(), pause()).when(resume(), at(late))
    expect(r.timer).toMatchObject({ dueAt: late, message: { event_type: STEP_TIMED_OUT, payload: { step: 'charge_payment', attempt: 1 } } })
    const t = given(created(), reserved(), pause(), resume()).when(msg(STEP_TIMED_OUT, { step: 'charge_payment', attempt: 1 }))
    expect(t.after).toMatchObject({ status: 'waiting_retry', step: 'charge_payment', attempt: 1 })
    expect(t.timer?.message.event_type).toBe(RETRY_DUE)
  })

  it('given a paused step, when it fails, then nothing is sent and the failure waits; on resume it is handled (a retry wait)', () => {
    const d = given(created(), reserved(), pause()).when(paymentFailed(1))
    expect(d.sent).toEqual([])
    expect(d.after).toMatchObject({ status: 'paused', paused: { failure: { retryable: true, reason: 'card declined' } } })
    const r = given(created(), reserved(), pause(), paymentFailed(1)).when(resume())
    expect(r.sent.map((x) => x.type)).toEqual([RESUME_ACCEPTED])
    expect(r.after).toMatchObject({ status: 'waiting_retry', step: 'charge_payment' })
    expect(r.timer?.message.event_type).toBe(RETRY_DUE)
  })

  it('given a paused step whose last attempt failed for good while paused, when resumed, then it compensates', () => {
    const r = given(created(), reserved(), pause(), paymentFailed(1, false)).when(resume())
    expect(r.sent.map((x) => x.type)).toEqual(['cancel_reservation', RESUME_ACCEPTED])
    expect(r.after).toMatchObject({ status: 'compensating', reason: 'card declined' })
  })

  it('given a paused saga, when a cancel is requested, then it is cancelled as a running one: the step in flight undone first, then the done ones', () => {
    const paused = [created(), reserved(), pause()]
    const d = given(...paused).when(msg(CANCEL_REQUESTED, { reason: 'customer left', requested_by: 'api' }))
    expect(d.sent.map((x) => x.type)).toEqual(['refund_payment', CANCEL_ACCEPTED])
    expect(d.after).toMatchObject({ status: 'compensating', uncertain: ['charge_payment'] })
    expect(d.after?.paused).toBeUndefined()
    const cancelling = [...paused, msg(CANCEL_REQUESTED, { reason: 'customer left', requested_by: 'api' })]
    const end = given(...cancelling, noCharge()).when(released())
    expect(end.sent).toEqual([{ topic: 'orderEvents', type: 'order.cancelled', payload: { reason: 'cancelled by request: customer left', compensated: ['charge_payment', 'reserve_inventory'] } }])
  })

  it('given a saga that ended, is compensating or is paused already, when a pause is requested, then it is ignored with the reason and nothing changes', () => {
    const cases: [Message[], RegExp][] = [
      [[created(), reserved(), charged()], /already ended: completed/],
      [[created(), reserved(), paymentFailed(1, false)], /compensating.*not paused/],
      [[created(), pause()], /already paused by sagactl saga pause/],
      [[], /no saga/],
    ]
    for (const [history, why] of cases) {
      const d = given(...history).when(pause())
      expect(d.state).toBeUndefined()
      expect(d.sent).toEqual([{ topic: 'control', type: PAUSE_IGNORED, payload: expect.objectContaining({ reason: expect.stringMatching(why) }) }])
    }
  })

  it('given a saga that is not paused, when a resume is requested, then it is ignored and nothing changes', () => {
    for (const history of [[created()], [created(), pause(), resume()], [created(), reserved(), charged()]]) {
      const d = given(...history).when(resume())
      expect(d.state).toBeUndefined()
      expect(d.sent).toEqual([{ topic: 'control', type: RESUME_IGNORED, payload: expect.objectContaining({ reason: expect.stringMatching(/not paused/) }) }])
    }
  })
})

describe('a deadline (deadlineMs, deadline_ms, saga.deadline-passed)', () => {
  const withDeadline: SagaDefinition = { ...orderSaga, deadlineMs: 60_000 }
  const createdAsking = (deadline_ms: unknown) => msg('order.created', { user_id: null, items: [{ sku: 'book', qty: 1 }], amount: 999, deadline_ms })
  const passed = (deadline_at: number) => msg(DEADLINE_PASSED, { deadline_at })

  it('given a definition with a deadline, when a saga starts, then it records the deadline and its timer is the step timeout, which is earlier', () => {
    const d = over(withDeadline).when(created(), at(T0))
    expect(d.after?.deadline_at).toBe(T0 + 60_000)
    expect(d.timer).toMatchObject({ dueAt: T0 + policy.stepTimeoutMs, message: { event_type: STEP_TIMED_OUT } })
  })

  it('given an order asking for an earlier deadline, then its timer is the deadline; a later one is bounded by the definition; none without either', () => {
    const early = over(withDeadline).when(createdAsking(10_000), at(T0))
    expect(early.after?.deadline_at).toBe(T0 + 10_000)
    expect(early.timer).toMatchObject({ dueAt: T0 + 10_000, message: { event_type: DEADLINE_PASSED, payload: { deadline_at: T0 + 10_000 } } })
    expect(over(withDeadline).when(createdAsking(600_000), at(T0)).after?.deadline_at).toBe(T0 + 60_000)
    expect(over(orderSaga).when(createdAsking(5_000), at(T0)).after?.deadline_at).toBe(T0 + 5_000)
    expect(over(orderSaga).when(createdAsking('soon'), at(T0)).after?.deadline_at).toBeUndefined()
    expect(over(orderSaga).when(created(), at(T0)).after?.deadline_at).toBeUndefined()
  })

  it('given a retry whose delay runs past the deadline, then the timer is the deadline; when it passes, the step waiting is undone first, then the done ones, and the saga ends "deadline passed"', () => {
    const def: SagaDefinition = { ...orderSaga, deadlineMs: 6_000 }
    const waiting = over(def, [created(), T0], [reserved(), T0 + 1_000])
    const failed = waiting.when(paymentFailed(1), at(T0 + 2_000))
    expect(failed.after?.status).toBe('waiting_retry')
    expect(failed.timer).toMatchObject({ dueAt: T0 + 6_000, message: { event_type: DEADLINE_PASSED } })
    expect(failed.after?.due_at).toBe(T0 + 2_000 + retryDelay(policy, 0.5))

    const history: [Message, number][] = [[created(), T0], [reserved(), T0 + 1_000], [paymentFailed(1), T0 + 2_000]]
    const d = over(def, ...history).when(passed(T0 + 6_000), at(T0 + 6_000))
    expect(d.sent).toEqual([{ topic: 'paymentCommands', type: 'refund_payment' }])
    expect(d.after).toMatchObject({ status: 'compensating', reason: DEADLINE_PASSED_REASON, uncertain: ['charge_payment'] })
    const end = over(def, ...history, [passed(T0 + 6_000), T0 + 6_000], [noCharge(), T0 + 6_100]).when(released(), at(T0 + 6_200))
    expect(end.after).toMatchObject({ status: 'cancelled', reason: DEADLINE_PASSED_REASON })
    expect(end.messages[0]!.envelope.payload).toEqual({ reason: DEADLINE_PASSED_REASON, compensated: ['charge_payment', 'reserve_inventory'] })
  })

  it('given a paused saga, then its deadline still runs, and when it passes the saga is cancelled', () => {
    const p = over(withDeadline, [created(), T0]).when(pause(), at(T0 + 1_000))
    expect(p.timer).toMatchObject({ dueAt: T0 + 60_000, message: { event_type: DEADLINE_PASSED } })
    const d = over(withDeadline, [created(), T0], [pause(), T0 + 1_000]).when(passed(T0 + 60_000), at(T0 + 60_000))
    expect(d.sent.map((x) => x.type)).toEqual(['cancel_reservation'])
    expect(d.after).toMatchObject({ status: 'compensating', reason: DEADLINE_PASSED_REASON })
  })

  it('given a saga that ended or is compensating, or a deadline that is not its own, when a deadline-passed is read, then nothing happens', () => {
    const completed: [Message, number][] = [[created(), T0], [reserved(), T0], [charged(), T0]]
    expect(over(withDeadline, ...completed).when(passed(T0 + 60_000), at(T0 + 60_000)).state).toBeUndefined()
    const compensating: [Message, number][] = [[created(), T0], [reserved(), T0], [paymentFailed(1, false), T0]]
    expect(over(withDeadline, ...compensating).when(passed(T0 + 60_000), at(T0 + 60_000)).state).toBeUndefined()
    expect(over(withDeadline, [created(), T0]).when(passed(T0 + 1), at(T0 + 60_000)).state).toBeUndefined()
    expect(over(orderSaga, [created(), T0]).when(passed(T0 + 60_000), at(T0 + 60_000)).state).toBeUndefined()
  })

  it('given a deadline, when a step completes the saga or it compensates, then the deadline timer is gone (the timer is cleared or the compensation timeout)', () => {
    const d = over(withDeadline, [created(), T0], [reserved(), T0]).when(charged(), at(T0 + 1))
    expect(d.timer).toBeNull()
    const c = over(withDeadline, [created(), T0], [reserved(), T0]).when(paymentFailed(1, false), at(T0 + 1))
    expect(c.timer?.message.event_type).toBe(STEP_TIMED_OUT)
  })
})
