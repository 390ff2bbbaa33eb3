import fc from 'fast-check'

import { event, type Envelope, type Message, type Outgoing } from '../../src/envelope.js'
import type { DecideContext, Timer } from '../../src/runtime/role.js'
import { inventory } from '../../src/order-saga/inventory.js'
import { payment } from '../../src/order-saga/payment.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import { awaitEvent, defineSaga, parallel, waitsOf, type Saga } from '../../src/saga/define.js'
import { CANCEL_REQUESTED, PAUSE_REQUESTED, RESUME_REQUESTED, decide, type RetryPolicy, type SagaState } from '../../src/saga/decide.js'
import { decideParticipant, inventorySpec, NO_CHAOS, paymentSpec, type ParticipantSpec, type ParticipantState } from '../../src/services/participant.js'
import type { TopicKey } from '../../src/topics.js'

// Valid saga logs are not written by hand: the real decision functions (the saga and both
// participants) run against a scheduler whose every choice comes from fast-check — which queue
// delivers next, whether a step's timer fires before its reply, which record a redelivery
// repeats, whether a participant succeeds. What they publish, in order, is the log.

const policy: Omit<RetryPolicy, 'maxCompensationAttempts'> = { maxAttempts: 3, minDelayMs: 200, maxDelayMs: 500, stepTimeoutMs: 4000 }
const participants: Partial<Record<TopicKey, ParticipantSpec>> = { inventoryCommands: inventorySpec, paymentCommands: paymentSpec }
const SUCCESS_RATE = [0, 0.5, 0.8, 1] as const
/** Enough for three attempts at both steps, their compensations and late replies; more means a loop. */
const MAX_DELIVERIES = 400

/** The order saga's two steps side by side, then a wait for an approval that cancels when it does not come. */
export const flowSaga: Saga = defineSaga({ ...orderSaga, steps: [parallel(inventory, payment), awaitEvent({ name: 'approval', event: 'order.approved', timeoutMs: 5_000, onTimeout: 'cancel' })] })

export interface OrderLog {
  order_id: string
  messages: Message[]
}

export interface SimulatedLogs {
  orders: OrderLog[]
  /** All orders' records interleaved, as one read of the topics returns them. */
  messages: Message[]
  /** The message_ids of order.created records that were dead-lettered (an invalid order). */
  deadLettered: Set<string>
}

const asMessage = (e: Envelope): Message => ({ ...e, type: e.event_type ?? e.command_type ?? '' })

/** Reads choices off a tape; past its end every choice is 0, which drains the system in a fixed order. */
class Tape {
  #i = 0
  constructor(readonly values: readonly number[]) {}
  pick(n: number): number {
    const v = this.values[this.#i++]
    return v === undefined ? 0 : v % n
  }
  get exhausted(): boolean {
    return this.#i >= this.values.length
  }
}

function uuidLike(prefix: number, n: number): string {
  return `00000000-0000-4000-8${String(prefix).padStart(3, '0')}-${String(n).padStart(12, '0')}`
}

/** What one order meets: the scheduler's choices, the participants' luck, and a participant that stalls. */
export interface Scenario {
  schedule: number[]
  luck: number[]
  inventoryRate: number
  paymentRate: number
  /**
   * This participant handles nothing until the saga has ended: every attempt times out, and its
   * replies come late. That is the road to a late success and its compensation. `releases`:
   * inventory reserves, but releases nothing until the saga has ended or is stuck, so every
   * compensation attempt times out, up to the bound, and its backlog settles the stuck saga. A
   * stalled participant is back once the saga is stuck, too: a cancel can leave it the undo of the
   * step in flight, which only it can confirm.
   */
  stall: 'none' | 'inventoryCommands' | 'paymentCommands' | 'releases'
  /** 1 makes a compensation stuck at its first timeout, so stuck sagas settled by a late confirmation are common. */
  compensationAttempts: number
  /** At this delivery, someone outside asks to cancel the saga (saga.cancel-requested), whatever it is doing then. */
  cancelAt?: number
  /** At this delivery, someone outside asks to pause the saga; it is resumed pauseFor deliveries after it is paused (or when all else is quiet). */
  pauseAt?: number
  pauseFor?: number
  /** The definition's deadlineMs: its timer competes with every other. */
  deadlineMs?: number
  /** At this delivery, the event a wait step awaits is published (a flow with a wait only). */
  eventAt?: number
}

export const scenarios: fc.Arbitrary<Scenario> = fc.record({
  schedule: fc.array(fc.nat({ max: 9999 }), { maxLength: 60 }),
  luck: fc.array(fc.nat({ max: 99 }), { maxLength: 8 }),
  inventoryRate: fc.constantFrom(...SUCCESS_RATE),
  paymentRate: fc.constantFrom(...SUCCESS_RATE),
  stall: fc.constantFrom('none', 'none', 'inventoryCommands', 'paymentCommands', 'releases'),
  compensationAttempts: fc.constantFrom(1, 3),
  cancelAt: fc.option(fc.nat({ max: 40 }), { nil: undefined, freq: 3 }),
  pauseAt: fc.option(fc.nat({ max: 30 }), { nil: undefined, freq: 3 }),
  pauseFor: fc.nat({ max: 20 }),
  deadlineMs: fc.option(fc.integer({ min: 500, max: 5_000 }), { nil: undefined, freq: 3 }),
  eventAt: fc.option(fc.nat({ max: 40 }), { nil: undefined, freq: 4 }),
})

/** One order's life, from its order.created to quiet: every record published on the saga topics. */
export function simulateOrder(index: number, scenario: Scenario, flow: Saga = orderSaga): OrderLog {
  const tape = new Tape(scenario.schedule)
  const luck = new Tape(scenario.luck)
  const order_id = uuidLike(index, 1)
  const saga_id = uuidLike(index, 2)
  let ids = 10
  let now = 1_700_000_000_000 + index * 60_000
  // Past the luck tape, 0.3: a success unless the participant's rate is 0.
  const ctx = (): DecideContext => ({ now, newId: () => uuidLike(index, ++ids), random: () => (luck.exhausted ? 0.3 : luck.pick(100) / 100) })
  const rates = { inventoryCommands: scenario.inventoryRate, paymentCommands: scenario.paymentRate }

  const log: Message[] = []
  const queues: Record<'orderEvents' | 'inventoryCommands' | 'paymentCommands', Message[]> = { orderEvents: [], inventoryCommands: [], paymentCommands: [] }
  const seen: Record<string, Set<string>> = { orchestrator: new Set(), inventoryCommands: new Set(), paymentCommands: new Set() }
  let saga: SagaState | undefined
  const held: Record<string, ParticipantState> = { inventoryCommands: { chaos: NO_CHAOS }, paymentCommands: { chaos: NO_CHAOS } }
  let timer: Timer | undefined
  let resumed = false
  const definition = scenario.deadlineMs === undefined ? flow : { ...flow, deadlineMs: scenario.deadlineMs }

  const publish = (out: Outgoing, cause?: string): void => {
    // The orchestrator's answers to a cancel request go to the requester, on the control topic: not a saga record.
    if (out.topic === 'control') return
    if (out.topic !== 'orderEvents' && out.topic !== 'inventoryCommands' && out.topic !== 'paymentCommands') throw new Error(`unexpected topic ${out.topic}`)
    const m = asMessage({ ...out.envelope, ...(out.envelope.causation_id || !cause ? {} : { causation_id: cause }) })
    log.push(m)
    queues[out.topic].push(m)
  }
  const orchestrate = (m: Message): void => {
    if (seen.orchestrator!.has(m.message_id)) return
    seen.orchestrator!.add(m.message_id)
    const d = decide(definition, { ...policy, maxCompensationAttempts: scenario.compensationAttempts }, saga, m, ctx())
    if (d.reject) return
    if (d.state) saga = d.state
    for (const out of d.messages) publish(out, m.message_id)
    if (d.timer === null) timer = undefined
    else if (d.timer) timer = d.timer
  }
  const participate = (topic: 'inventoryCommands' | 'paymentCommands', m: Message): void => {
    if (seen[topic]!.has(m.message_id)) return
    seen[topic]!.add(m.message_id)
    const d = decideParticipant(participants[topic]!, { successRate: rates[topic], allowChaos: false }, held[topic]!, m, ctx())
    if (d.reject) return
    if (d.effect) held[topic] = { ...held[topic]!, effect: d.effect }
    for (const out of d.messages) publish(out, m.message_id)
  }
  const deliver = (topic: keyof typeof queues): void => {
    const m = queues[topic].shift()!
    if (topic === 'orderEvents') orchestrate(m)
    else participate(topic, m)
  }
  const fire = (): void => {
    const due = timer!
    timer = undefined
    orchestrate(asMessage(due.message))
  }

  publish({ topic: 'orderEvents', envelope: event('order.created', { order_id, saga_id, payload: { user_id: `u-${index}`, items: [{ sku: `sku-${index}`, qty: 1 }], amount: 100 + index } }, now, uuidLike(index, 3)) })

  for (let step = 0; ; step++) {
    if (step > MAX_DELIVERIES) throw new Error(`order ${index} did not settle within ${MAX_DELIVERIES} deliveries`)
    now += 100
    if (step === scenario.cancelAt) publish({ topic: 'orderEvents', envelope: event(CANCEL_REQUESTED, { order_id, saga_id, payload: { reason: 'simulated', requested_by: 'test' } }, now, uuidLike(index, 4)) })
    for (const w of waitsOf(flow)) if (step === scenario.eventAt) publish({ topic: 'orderEvents', envelope: event(w.event, { order_id, saga_id, payload: { approved_by: 'test' } }, now, uuidLike(index, 7)) })
    if (step === scenario.pauseAt) publish({ topic: 'orderEvents', envelope: event(PAUSE_REQUESTED, { order_id, saga_id, payload: { reason: 'simulated', requested_by: 'test' } }, now, uuidLike(index, 5)) })
    if (!resumed && saga?.status === 'paused' && (step >= (scenario.pauseAt ?? 0) + (scenario.pauseFor ?? 0) || tape.exhausted)) {
      resumed = true
      publish({ topic: 'orderEvents', envelope: event(RESUME_REQUESTED, { order_id, saga_id, payload: { requested_by: 'test' } }, now, uuidLike(index, 6)) })
    }
    const ended = saga?.status === 'completed' || saga?.status === 'cancelled'
    const stalled = (t: keyof typeof queues): boolean =>
      scenario.stall === 'releases' ? t === 'inventoryCommands' && queues[t][0]?.type === 'cancel_reservation' && !ended && saga?.status !== 'stuck' : !ended && saga?.status !== 'stuck' && t === scenario.stall
    const ready = (Object.keys(queues) as (keyof typeof queues)[]).filter((t) => queues[t].length > 0 && !stalled(t))
    if (tape.exhausted) {
      // Draining: replies come before timers, so every saga settles.
      if (ready.length > 0) deliver(ready[0]!)
      else if (timer) fire()
      else if (Object.values(queues).some((q) => q.length > 0)) throw new Error(`order ${index} is stuck: a stalled participant and no timer`)
      else break
      continue
    }
    const choice = tape.pick(ready.length + 2)
    if (choice < ready.length) deliver(ready[choice]!)
    else if (choice === ready.length && timer) fire()
    else if (log.length > 0) {
      // A redelivery (a relay that published and died before marking its row sent; soak's injected
      // duplicates): the same bytes again, later on the same topic.
      const again = log[tape.pick(log.length)]!
      const topic = again.command_type ? (again.type === 'reserve_inventory' || again.type === 'cancel_reservation' ? 'inventoryCommands' : 'paymentCommands') : 'orderEvents'
      log.push(again)
      queues[topic].push(again)
    }
  }
  return { order_id, messages: log }
}

/**
 * Several orders' logs, interleaved as a read returns them, plus two things a real log has that
 * are not sagas' doing: the keyed order.created published twice (the api, and soak's fallback
 * after the api timed out) with different occurred_at, and an invalid order.created that was
 * dead-lettered.
 */
export const validLogs = (orders: { min: number; max: number } = { min: 1, max: 5 }, saga: Saga = orderSaga): fc.Arbitrary<SimulatedLogs> =>
  fc
    .record({
      each: fc.array(scenarios, { minLength: orders.min, maxLength: orders.max }),
      merge: fc.array(fc.nat({ max: 9999 }), { maxLength: 300 }),
      fallbackCopy: fc.boolean(),
      deadLetter: fc.boolean(),
    })
    .map(({ each, merge, fallbackCopy, deadLetter }) => {
      const orders = each.map((scenario, i) => simulateOrder(i, scenario, saga))
      if (fallbackCopy && orders[0]) {
        const created = orders[0].messages[0]!
        orders[0].messages.splice(1, 0, { ...created, occurred_at: new Date(Date.parse(created.occurred_at!) + 2000).toISOString(), payload: { amount: created.payload.amount, items: created.payload.items, user_id: created.payload.user_id } })
      }
      const streams = orders.map((o) => [...o.messages])
      const deadLettered = new Set<string>()
      if (deadLetter) {
        const bad = asMessage(event('order.created', { order_id: uuidLike(999, 1), saga_id: uuidLike(999, 2), payload: { items: 'lots', amount: -5 } }, 0, uuidLike(999, 3)))
        streams.push([bad])
        deadLettered.add(bad.message_id)
      }
      return { orders, messages: interleave(streams, new Tape(merge)), deadLettered }
    })

/** Merges streams keeping each one's own order, as Kafka keeps one key's records in order. */
function interleave(streams: Message[][], tape: Tape): Message[] {
  const out: Message[] = []
  const rest = streams.map((s) => [...s])
  for (;;) {
    const open = rest.filter((s) => s.length > 0)
    if (open.length === 0) return out
    out.push(open[tape.pick(open.length)]!.shift()!)
  }
}
