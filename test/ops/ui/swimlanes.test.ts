import { describe, expect, it } from 'vitest'

import type { SagaReport, TimelineEntry } from '../../../src/services/orchestrator/timeline.js'
import { swimlanesOf } from '../../../src/ops/ui/swimlanes.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { inventory } from '../../../src/order-saga/inventory.js'
import { payment } from '../../../src/order-saga/payment.js'
import { defineSaga, parallel } from '../../../src/saga/define.js'

const T0 = Date.parse('2030-01-01T00:00:00Z')
let n = 0

/** One timeline entry, `ms` after T0, shaped as loadSagaReport makes them. */
function entry(ms: number, direction: TimelineEntry['direction'], type: string, step: string, attempt: number | null, extra: Partial<TimelineEntry> = {}): TimelineEntry {
  const topic = direction === 'timer' ? 'timer' : type.includes('_') ? (/inventory|reservation/.test(type) ? 'p.inventory.commands' : 'p.payment.commands') : 'p.order.events'
  return { at: new Date(T0 + ms).toISOString(), direction, topic, type, step, attempt, compensation: /cancel_reservation|refund|reservation-cancelled|refunded/.test(type), message_id: `m${++n}`, causation_id: null, payload: {}, ...extra }
}

function report(timeline: TimelineEntry[], status: SagaReport['status'] = 'cancelled'): SagaReport {
  return { order_id: 'o', saga_id: 's', status, outcome: status === 'completed' || status === 'cancelled' ? status : null, reason: null, stuck_reason: null, cancel_requested: null, paused: null, resumed: null, branches: null, deadline_at: null, version: null, step: 'charge_payment', attempt: 3, started_at: timeline[0]!.at, finished_at: null, timeline }
}

/** A command and the participant's reply to it. */
function exchange(ms: number, command: string, reply: string, step: string, attempt: number, replyAfter = 20): TimelineEntry[] {
  const c = entry(ms, 'out', command, step, attempt)
  return [c, entry(ms + replyAfter, 'in', reply, step, attempt, { causation_id: c.message_id })]
}

describe('swimlanesOf: the saga show timeline, placed on one lane per role', () => {
  const twoRetriesThenUndo = [
    entry(0, 'in', 'order.created', 'order', null),
    ...exchange(10, 'reserve_inventory', 'inventory.reserved', 'reserve_inventory', 1),
    ...exchange(40, 'charge_payment', 'payment.failed', 'charge_payment', 1),
    entry(2060, 'timer', 'saga.retry-due', 'charge_payment', 2),
    ...exchange(2060, 'charge_payment', 'payment.failed', 'charge_payment', 2),
    entry(4080, 'timer', 'saga.retry-due', 'charge_payment', 3),
    ...exchange(4080, 'charge_payment', 'payment.failed', 'charge_payment', 3),
    ...exchange(4110, 'cancel_reservation', 'inventory.reservation-cancelled', 'reserve_inventory', 4),
    entry(4140, 'out', 'order.cancelled', 'order', null, { topic: 'p.order.events' }),
  ]
  const lanes = swimlanesOf(report(twoRetriesThenUndo), T0 + 999_999, orderSaga)

  it('ends at the final event, whatever the clock says', () => {
    expect(lanes.until).toBe(4140)
    expect(lanes.start).toBe('2030-01-01T00:00:00.000Z')
  })

  it('commands and timers in the orchestrator, replies in their participant, the order in the api', () => {
    const where = (type: string) => lanes.marks.filter((m) => m.type === type && m.kind !== 'notified').map((m) => `${m.lane}:${m.kind}:${m.attempt}`)
    expect(where('order.created')).toEqual(['api:event:null'])
    expect(where('charge_payment')).toEqual(['orchestrator:command:1', 'orchestrator:command:2', 'orchestrator:command:3'])
    expect(where('payment.failed')).toEqual(['payment:event:1', 'payment:event:2', 'payment:event:3'])
    expect(where('saga.retry-due')).toEqual(['orchestrator:timer:2', 'orchestrator:timer:3'])
    expect(where('inventory.reservation-cancelled')).toEqual(['inventory:event:4'])
    expect(where('order.cancelled')).toEqual(['orchestrator:final:null'])
  })

  it('each retry wait runs from the failure it answers to the timer', () => {
    expect(lanes.spans.filter((s) => s.kind === 'wait').map((s) => [s.lane, s.from, s.to])).toEqual([
      ['orchestrator', 60, 2060],
      ['orchestrator', 2080, 4080],
    ])
  })

  it("each command's handling runs in its participant's lane until the reply; a compensation is marked", () => {
    const handling = lanes.spans.filter((s) => s.kind === 'handling').map((s) => [s.lane, s.step, s.from, s.to, s.compensation, s.open])
    expect(handling).toEqual([
      ['inventory', 'reserve_inventory', 10, 30, false, false],
      ['payment', 'charge_payment', 40, 60, false, false],
      ['payment', 'charge_payment', 2060, 2080, false, false],
      ['payment', 'charge_payment', 4080, 4100, false, false],
      ['inventory', 'reserve_inventory', 4110, 4130, true, false],
    ])
  })

  it('the notifier lane shows every event, not the commands or timers', () => {
    expect(lanes.marks.filter((m) => m.lane === 'notifier').map((m) => m.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'payment.failed', 'payment.failed', 'inventory.reservation-cancelled', 'order.cancelled'])
  })

  it('a saga still waiting for a reply is drawn up to now, its handling open', () => {
    const running = swimlanesOf(report(twoRetriesThenUndo.slice(0, 4), 'running'), T0 + 3000, orderSaga)
    expect(running.until).toBe(3000)
    expect(running.spans.find((s) => s.open)).toMatchObject({ lane: 'payment', from: 40, to: 3000 })
  })

  it('a step timeout waits from the command it gave up on', () => {
    const timedOut = swimlanesOf(report([entry(0, 'in', 'order.created', 'order', null), entry(10, 'out', 'reserve_inventory', 'reserve_inventory', 1), entry(30_010, 'timer', 'saga.step-timed-out', 'reserve_inventory', 1)], 'running'), T0 + 30_010, orderSaga)
    expect(timedOut.spans.find((s) => s.kind === 'wait')).toMatchObject({ lane: 'orchestrator', from: 10, to: 30_010 })
  })
})

describe('swimlanesOf a parallel stage: its branches side by side', () => {
  it('given reserve ∥ charge, then each branch is handled on its own participant lane over the same stretch of time', () => {
    const flow = defineSaga({ ...orderSaga, steps: [parallel(inventory, payment)] })
    const timeline = [
      entry(0, 'in', 'order.created', 'order', null),
      ...exchange(10, 'reserve_inventory', 'inventory.reserved', 'reserve_inventory', 1, 30),
      ...exchange(11, 'charge_payment', 'payment.succeeded', 'charge_payment', 1, 49),
      entry(70, 'out', 'order.completed', 'order', null, { topic: 'p.order.events' }),
    ]
    const lanes = swimlanesOf(report(timeline, 'completed'), T0 + 1_000, flow)
    const handling = lanes.spans.filter((s) => s.kind === 'handling').map((s) => [s.lane, s.from, s.to])
    expect(handling).toEqual([
      ['inventory', 10, 40],
      ['payment', 11, 60],
    ])
  })
})
