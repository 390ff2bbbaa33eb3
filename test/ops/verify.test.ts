import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { command, event, type Message } from '../../src/envelope.js'
import { breachKinds } from '../../src/saga/derive.js'
import { BREACH_KINDS, renderVerifyReport, verifyMessages, type BreachKind } from '../../src/ops/verify.js'
import { threeStepSaga } from '../saga/three-step-saga.js'
import { injections } from './breaches.js'
import { flowSaga, validLogs, type SimulatedLogs } from './saga-logs.js'

const RUNS = { numRuns: 300 }
const kinds = (r: ReturnType<typeof verifyMessages>) => r.breaches.map((b) => [b.order_id, b.kind])

/** The logs with one order's records replaced, in the places its own records held; other orders stay as they were. */
function withOrder(logs: SimulatedLogs, orderId: string, replaced: Message[]): Message[] {
  const rest = [...replaced]
  const out: Message[] = []
  for (const m of logs.messages) {
    if (m.order_id !== orderId) out.push(m)
    else if (rest.length > 0) out.push(rest.shift()!)
  }
  return [...out, ...rest]
}

describe('verify over valid logs', () => {
  it('given any log the saga and participants write (retries, timeouts, late replies, compensations, redeliveries, cancels, pauses and resumes from outside, deadlines), when verified, then no breach and every order settled', () => {
    fc.assert(
      fc.property(validLogs(), (logs) => {
        const report = verifyMessages(logs.messages, logs.deadLettered)
        expect(report.breaches).toEqual([])
        expect(report).toMatchObject({ ok: true, empty: false, orders: logs.orders.length, unfinished: 0 })
        expect(report.completed + report.cancelled).toBe(logs.orders.length)
      }),
      RUNS,
    )
  })

  it('given any log of a saga with a parallel stage and a wait for an outside event (branch replies in any order, their own retries and timeouts, the event early, late or never, cancels, pauses, deadlines), when verified, then no breach: every cancelled order has no effect standing and every completed one exactly one per step', () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(validLogs(undefined, flowSaga), (logs) => {
        const report = verifyMessages(logs.messages, logs.deadLettered, { saga: flowSaga })
        expect(report.breaches).toEqual([])
        expect(report).toMatchObject({ ok: true, orders: logs.orders.length, unfinished: 0 })
        for (const o of logs.orders) {
          const types = o.messages.map((m) => m.type)
          const final = o.messages.find((m) => m.type === 'order.completed' || m.type === 'order.cancelled')
          if (final?.type === 'order.completed') seen.add('completed after the approval')
          if (final?.payload.reason === 'no order.approved within 5000 ms') seen.add('cancelled: no approval in time')
          if (types.indexOf('order.approved') >= 0 && types.indexOf('order.approved') < Math.min(...['inventory.reserved', 'payment.succeeded'].map((t) => (types.includes(t) ? types.indexOf(t) : Infinity)))) seen.add('approval before the branches')
          if (types.includes('payment.failed') && types.includes('inventory.reservation-cancelled') && types.indexOf('inventory.reserved') > types.indexOf('payment.failed')) seen.add('a branch failed while the other was in flight')
          if (types.includes('payment.refunded') && types.includes('inventory.reservation-cancelled')) seen.add('both branches undone')
        }
      }),
      RUNS,
    )
    expect([...seen].sort()).toEqual(['a branch failed while the other was in flight', 'approval before the branches', 'both branches undone', 'cancelled: no approval in time', 'completed after the approval'])
  })

  it('given the generator, then it reaches every shape the injections need (so the properties below are not vacuous)', () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(validLogs(), (logs) => {
        for (const o of logs.orders) {
          const types = o.messages.map((m) => m.type)
          if (types.includes('payment.refunded')) seen.add('refund')
          if (types.includes('inventory.reservation-cancelled')) seen.add('release')
          if (types.includes('order.completed')) seen.add('completed')
          if (types.includes('order.cancelled') && !types.includes('inventory.reserved')) seen.add('cancelled at inventory')
          if (o.messages.some((m) => m.payload.repeated === true)) seen.add('repeated reply')
          if (o.messages.some((m) => typeof m.payload.attempt === 'number' && m.payload.attempt > 1)) seen.add('retry')
          if (new Set(o.messages.map((m) => m.message_id)).size < o.messages.length) seen.add('redelivery')
          if (types.includes('saga.stuck') && types.includes('order.cancelled')) seen.add('stuck, then settled by a late confirmation')
          const cancelled = o.messages.find((m) => m.type === 'order.cancelled')
          if (String(cancelled?.payload.reason).startsWith('cancelled by request')) seen.add('cancelled by request')
          if (types.indexOf('saga.cancel-requested') > types.indexOf('order.completed') && types.includes('order.completed')) seen.add('cancel after the end')
          // The simulation asks for a resume only of a saga it saw paused.
          if (types.includes('saga.resume-requested') && types.includes('order.completed')) seen.add('paused, resumed, completed')
          if (cancelled?.payload.reason === 'deadline passed') seen.add('deadline passed')
        }
      }),
      { numRuns: 500 },
    )
    expect([...seen].sort()).toEqual(['cancel after the end', 'cancelled at inventory', 'cancelled by request', 'completed', 'deadline passed', 'paused, resumed, completed', 'redelivery', 'refund', 'release', 'repeated reply', 'retry', 'stuck, then settled by a late confirmation'])
  })
})

describe('verify over a log with one breach injected', () => {
  for (const [kind, inject] of Object.entries(injections) as [BreachKind, (typeof injections)[keyof typeof injections]][]) {
    it(`given a valid log and one ${kind} in one order, when verified, then exactly that breach, for that order`, () => {
      fc.assert(
        fc.property(validLogs(), fc.nat(), fc.nat(), (logs, which, choice) => {
          const candidates = logs.orders.map((o) => ({ o, broken: inject(o, choice) })).filter((c) => c.broken !== undefined)
          fc.pre(candidates.length > 0)
          const { o, broken } = candidates[which % candidates.length]!
          const report = verifyMessages(withOrder(logs, o.order_id, broken!), logs.deadLettered)
          expect(kinds(report)).toEqual([[o.order_id, kind]])
          expect(report.ok).toBe(false)
        }),
        RUNS,
      )
    })
  }
})

describe('verify, by example', () => {
  const order = (n: number) => ({ order_id: `order-${n}`, saga_id: `saga-${n}` })
  const msg = (type: string, n: number, id: string, payload: Record<string, unknown> = {}, at = 0): Message => ({ ...event(type, { ...order(n), payload }, at, id), type })
  const created = (n: number, at = 0) => msg('order.created', n, `created-${n}`, { user_id: null, items: [{ sku: 'book', qty: 1 }], amount: 100 }, at)
  const completedOrder = (n: number): Message[] => [
    created(n),
    msg('inventory.reserved', n, `r-${n}`, { reservation_id: `res-${n}`, attempt: 1 }),
    msg('payment.succeeded', n, `p-${n}`, { payment_id: `pay-${n}`, amount: 100, attempt: 1 }),
    msg('order.completed', n, `c-${n}`),
  ]

  it('given no order at all, when verified, then not ok (a wrong prefix looks like this) and says so', () => {
    const report = verifyMessages([])
    expect(report).toMatchObject({ ok: false, empty: true, orders: 0, breaches: [] })
    expect(renderVerifyReport(report)).toMatch(/^NOTHING TO VERIFY: 0 orders/)
    expect(renderVerifyReport(report)).toContain('--allow-empty')
  })

  it('given no order and allowEmpty, when verified, then ok', () => {
    expect(verifyMessages([], new Set(), { allowEmpty: true })).toMatchObject({ ok: true, empty: true, orders: 0 })
  })

  it('given only a dead-lettered order.created, when verified, then there is no order to verify', () => {
    const bad = created(1)
    expect(verifyMessages([bad], new Set([bad.message_id]))).toMatchObject({ ok: false, empty: true, orders: 0 })
  })

  it('given a keyed order.created published twice with another occurred_at and key order, when verified, then one order and no conflict', () => {
    const again = { ...created(1, 5000), payload: { amount: 100, items: [{ qty: 1, sku: 'book' }], user_id: null } }
    const report = verifyMessages([...completedOrder(1), again])
    expect(report).toMatchObject({ ok: true, orders: 1, completed: 1, duplicate_records: 1, breaches: [] })
  })

  it('given a message_id reused with another body, when verified, then the breach names the first copy\'s order and both types', () => {
    const log = completedOrder(1)
    const report = verifyMessages([...log, msg('order.cancelled', 2, 'c-1')])
    expect(report.breaches).toEqual([{ order_id: 'order-1', kind: 'message_id_conflict', rule: 'one message_id, one message', detail: 'message_id c-1 carries two different messages: order.completed and order.cancelled' }])
  })

  it('given a payment taken with no reservation and no charge_payment on the log, when verified, then charge_without_reservation', () => {
    const report = verifyMessages([
      created(1),
      msg('inventory.reserve-failed', 1, 'f-1', { reason: 'out of stock', retryable: false, attempt: 1 }),
      msg('payment.succeeded', 1, 'p-1', { payment_id: 'pay-1', attempt: 1 }),
      msg('payment.refunded', 1, 'pr-1', { payment_id: 'pay-1', attempt: 1 }),
      msg('order.cancelled', 1, 'x-1', { reason: 'out of stock' }),
    ])
    expect(kinds(report)).toEqual([['order-1', 'charge_without_reservation']])
  })

  it('given a saga that said it is stuck, when verified, then one stuck breach naming its reason and how to resume it, counted as unfinished', () => {
    const reason = 'compensation of reserve_inventory (cancel_reservation) not confirmed after 2 attempts'
    const log = [
      created(1),
      msg('inventory.reserved', 1, 'r-1', { reservation_id: 'res-1', attempt: 1 }),
      msg('payment.failed', 1, 'f-1', { reason: 'card declined', retryable: false, attempt: 1 }),
      msg('saga.stuck', 1, 's-1', { step: 'reserve_inventory', attempt: 2, reason }),
    ]
    const report = verifyMessages(log)
    expect(report).toMatchObject({ ok: false, unfinished: 1, stuck: 1 })
    expect(report.breaches).toEqual([{ order_id: 'order-1', kind: 'stuck', rule: 'finished', detail: `${reason}; resume it with \`sagactl saga retry order-1\`` }])
    expect(renderVerifyReport(report)).toMatch(/^BREACHED: 1 orders — 0 completed, 0 cancelled, 1 unfinished \(1 stuck\)/)
    // Once retried, it is on its way again: unfinished until its final event, not stuck.
    const retried = verifyMessages([...log, msg('saga.retry-requested', 1, 'q-1', { step: 'reserve_inventory', attempt: 2 })])
    expect(retried).toMatchObject({ unfinished: 1, stuck: 0 })
    expect(kinds(retried)).toEqual([['order-1', 'unfinished']])
  })

  it('given a saga cancelled by request (the step in flight undone with nothing to undo, its late act declined), when verified, then cancelled with no net effect and no breach', () => {
    const log = [
      created(1),
      msg('inventory.reserved', 1, 'r-1', { reservation_id: 'res-1', attempt: 1 }),
      msg('charge_payment', 1, 'cp-1', { amount: 100, attempt: 1 }),
      msg('saga.cancel-requested', 1, 'x-1', { reason: 'customer asked', requested_by: 'api' }),
      msg('refund_payment', 1, 'rp-1', { attempt: 1 }),
      msg('payment.refunded', 1, 'pr-1', { payment_id: null, note: 'nothing to undo', attempt: 1 }),
      msg('payment.failed', 1, 'pf-1', { reason: 'charge_payment came after its undo: not carried out', retryable: false, attempt: 1 }),
      msg('cancel_reservation', 1, 'cr-1', { reservation_id: 'res-1', attempt: 1 }),
      msg('inventory.reservation-cancelled', 1, 'rc-1', { reservation_id: 'res-1', attempt: 1 }),
      msg('order.cancelled', 1, 'oc-1', { reason: 'cancelled by request: customer asked', compensated: ['charge_payment', 'reserve_inventory'] }),
    ]
    expect(verifyMessages(log)).toMatchObject({ ok: true, cancelled: 1, breaches: [] })
    // A cancel after the end changed nothing, and verify agrees.
    expect(verifyMessages([...completedOrder(2), msg('saga.cancel-requested', 2, 'x-2', { reason: 'too late', requested_by: 'api' })])).toMatchObject({ ok: true, completed: 1, breaches: [] })
  })

  it('given a completed order, when rendered, then the report says OK with its counts', () => {
    expect(renderVerifyReport(verifyMessages(completedOrder(1)))).toMatch(/^OK: 1 orders — 1 completed, 0 cancelled, 0 unfinished/)
  })

  it('given a breach, when rendered, then the line names its kind, rule and order', () => {
    const [c, r, , done] = completedOrder(1)
    expect(renderVerifyReport(verifyMessages([c!, r!, done!]))).toContain('✗ order-1  completed_without_payment (completed ⇒ one net charge): nothing was ever charged')
  })
})

describe('verify derives its rules from each step: a three-step saga, by example', () => {
  const saga = threeStepSaga
  const at = (n: number) => ({ order_id: `order-${n}`, saga_id: `saga-${n}` })
  const msg = (type: string, n: number, id: string, payload: Record<string, unknown> = {}): Message => ({ ...event(type, { ...at(n), payload }, 0, id), type })
  const created = (n: number) => msg('order.created', n, `created-${n}`, { user_id: null, items: [{ sku: 'book', qty: 1 }], amount: 100 })
  const reserved = (n: number) => msg('inventory.reserved', n, `r-${n}`, { reservation_id: `res-${n}`, attempt: 1 })
  const charged = (n: number) => msg('payment.succeeded', n, `p-${n}`, { payment_id: `pay-${n}`, amount: 100, attempt: 1 })
  const shipped = (n: number, id = `ship-${n}`, messageId = `s-${n}`) => msg('shipping.shipped', n, messageId, { shipment_id: id, attempt: 1 })
  const completed = (n: number) => msg('order.completed', n, `c-${n}`)
  const cancelled = (n: number) => msg('order.cancelled', n, `x-${n}`, { reason: 'no carrier available' })
  const verify = (log: Message[]) => verifyMessages(log, new Set(), { saga })

  it('given every kind of the three-step saga, then the order saga\'s kinds are among them and the ship step adds its own', () => {
    expect(breachKinds(saga)).toEqual(expect.arrayContaining([...BREACH_KINDS, 'double_shipment', 'shipment_without_charge', 'completed_without_shipment']))
  })

  it('given reserve, charge, ship, completed, then no breach', () => {
    expect(verify([created(1), reserved(1), charged(1), shipped(1), completed(1)])).toMatchObject({ ok: true, orders: 1, completed: 1, breaches: [] })
  })

  it('given a completed order that was never shipped, then completed_without_shipment, which the order saga does not check', () => {
    const log = [created(1), reserved(1), charged(1), completed(1)]
    expect(kinds(verify(log))).toEqual([['order-1', 'completed_without_shipment']])
    expect(verifyMessages(log).breaches).toEqual([])
  })

  it('given two shipments for one order, then double_shipment', () => {
    expect(kinds(verify([created(1), reserved(1), charged(1), shipped(1), shipped(1, 'ship-again', 's-again'), completed(1)]))).toEqual([['order-1', 'double_shipment']])
  })

  it('given ship_order sent although the charge failed, then shipment_without_charge', () => {
    const report = verify([
      created(1),
      reserved(1),
      msg('payment.failed', 1, 'pf-1', { reason: 'card declined', retryable: false, attempt: 1 }),
      { ...command('ship_order', { ...at(1), payload: { attempt: 1 } }, 0, 'so-1'), type: 'ship_order' },
      msg('shipping.ship-failed', 1, 'sf-1', { reason: 'no carrier available', retryable: false, attempt: 1 }),
      msg('inventory.reservation-cancelled', 1, 'rc-1', { reservation_id: 'res-1', attempt: 1 }),
      cancelled(1),
    ])
    expect(report.breaches).toEqual([{ order_id: 'order-1', kind: 'shipment_without_charge', rule: 'no shipment after a payment failure', detail: 'ship_order sent without a charge' }])
  })

  it('given a cancelled order whose shipment was never cancelled, then cancelled_with_effect_standing in the ship step\'s words', () => {
    const report = verify([
      created(1),
      reserved(1),
      charged(1),
      shipped(1),
      msg('payment.refunded', 1, 'pr-1', { payment_id: 'pay-1', attempt: 1 }),
      msg('inventory.reservation-cancelled', 1, 'rc-1', { reservation_id: 'res-1', attempt: 1 }),
      cancelled(1),
    ])
    expect(report.breaches).toEqual([{ order_id: 'order-1', kind: 'cancelled_with_effect_standing', rule: 'cancelled ⇒ nothing shipped', detail: '1 shipment(s) not cancelled' }])
  })

  it('given a saga stuck undoing its shipment, then stuck; the ship step\'s own confirmation moves it on, as the order saga\'s do', () => {
    const stuck = msg('saga.stuck', 1, 'st-1', { step: 'ship_order', attempt: 2, reason: 'compensation of ship_order (cancel_shipment) not confirmed after 2 attempts' })
    const log = [created(1), reserved(1), charged(1), shipped(1), stuck]
    expect(kinds(verify(log))).toEqual([['order-1', 'stuck']])
    const confirmed = msg('shipping.shipment-cancelled', 1, 'sc-1', { shipment_id: 'ship-1' })
    expect(kinds(verify([...log, confirmed]))).toEqual([['order-1', 'unfinished']])
  })

  it('given a shipment cancelled twice, then compensation_applied_twice names the shipment', () => {
    const undo = (id: string) => msg('shipping.shipment-cancelled', 1, id, { shipment_id: 'ship-1', attempt: 1 })
    const report = verify([created(1), reserved(1), charged(1), shipped(1), undo('u-1'), undo('u-2'), msg('payment.refunded', 1, 'pr-1', { payment_id: 'pay-1', attempt: 1 }), msg('inventory.reservation-cancelled', 1, 'rc-1', { reservation_id: 'res-1', attempt: 1 }), cancelled(1)])
    expect(report.breaches).toEqual([{ order_id: 'order-1', kind: 'compensation_applied_twice', rule: 'no compensation applied twice', detail: 'shipment ship-1 cancelled 2 times' }])
  })
})

describe('the injections above', () => {
  it('cover every kind verify can report for the order saga', () => {
    expect(Object.keys(injections).sort()).toEqual([...BREACH_KINDS].sort())
  })
})
