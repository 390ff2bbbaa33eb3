import { command, event, type Message } from '../../src/envelope.js'
import type { BreachKind } from '../../src/ops/verify.js'
import type { OrderLog } from './saga-logs.js'

// Each injection turns one valid order's log into a log with exactly one kind of breach, the way
// the bug it stands for would write it. An order it cannot apply to (a double charge needs a
// charge) gets undefined.

export type Injection = (order: OrderLog, choice: number) => Message[] | undefined

const FINALS = ['order.completed', 'order.cancelled']
const as = (e: ReturnType<typeof event>): Message => ({ ...e, type: e.event_type ?? e.command_type ?? '' })
const ofType = (messages: Message[], type: string) => messages.filter((m) => m.type === type)
const finalOf = (messages: Message[]) => messages.find((m) => FINALS.includes(m.type))
const fresh = (order: OrderLog, n: number) => `${order.order_id.slice(0, 24)}${String(900_000_000_000 + n)}`
const ids = (o: OrderLog) => ({ order_id: o.order_id, saga_id: o.messages[0]!.saga_id })

/** Inserts `added` right after the first record matching `after`, keeping everything else in place. */
function insertAfter(messages: Message[], after: (m: Message) => boolean, added: Message[]): Message[] {
  const at = messages.findIndex(after)
  return [...messages.slice(0, at + 1), ...added, ...messages.slice(at + 1)]
}

/** One per kind of the order saga; verify.test.ts fails when a kind has no injection here. */
export const injections: Record<BreachKind, Injection> = {
  // Inventory forgot the reservation it made and reserved again under a new id.
  double_reservation(o, choice) {
    const reserved = ofType(o.messages, 'inventory.reserved')[0]
    const outcome = finalOf(o.messages)?.type
    if (!reserved || !outcome) return undefined
    const second = as(event('inventory.reserved', { ...ids(o), payload: { items: reserved.payload.items, reservation_id: fresh(o, 1), attempt: 2 } }, 0, fresh(o, 2)))
    const release = outcome === 'order.cancelled' || choice % 2 === 1 ? [as(event('inventory.reservation-cancelled', { ...ids(o), payload: { reservation_id: fresh(o, 1), attempt: 1 } }, 0, fresh(o, 3)))] : []
    return insertAfter(o.messages, (m) => m === reserved, [second, ...release])
  },

  // Completed with its reservation released. (With none ever made, its charge would also be a
  // charge without a reservation: two breaches, rightly.)
  completed_without_reservation(o) {
    if (finalOf(o.messages)?.type !== 'order.completed') return undefined
    const reserved = ofType(o.messages, 'inventory.reserved')[0]!
    const release = as(event('inventory.reservation-cancelled', { ...ids(o), payload: { reservation_id: reserved.payload.reservation_id, attempt: 1 } }, 0, fresh(o, 1)))
    return insertAfter(o.messages, (m) => m === reserved, [release])
  },

  // A participant undid an effect a second time instead of answering "repeated".
  compensation_applied_twice(o, choice) {
    const undone = [...ofType(o.messages, 'inventory.reservation-cancelled'), ...ofType(o.messages, 'payment.refunded')].filter((m) => m.payload.repeated !== true && typeof (m.payload.reservation_id ?? m.payload.payment_id) === 'string')
    if (undone.length === 0) return undefined
    const pick = undone[choice % undone.length]!
    return insertAfter(o.messages, (m) => m === pick, [{ ...pick, message_id: fresh(o, 1) }])
  },


  // The payment participant forgot the charge it made and took the money again under a new id.
  double_charge(o, choice) {
    const charge = ofType(o.messages, 'payment.succeeded')[0]
    const outcome = finalOf(o.messages)?.type
    if (!charge || !outcome) return undefined
    const second = as(event('payment.succeeded', { ...ids(o), payload: { amount: charge.payload.amount, payment_id: fresh(o, 1), attempt: 2 } }, 0, fresh(o, 2)))
    // A cancelled order refunds what it takes, the second charge too: the breach is the charge, not a leak.
    const refund = outcome === 'order.cancelled' || choice % 2 === 1 ? [as(event('payment.refunded', { ...ids(o), payload: { amount: charge.payload.amount, payment_id: fresh(o, 1), attempt: 1 } }, 0, fresh(o, 3)))] : []
    return insertAfter(o.messages, (m) => m === charge, [second, ...refund])
  },

  // The orchestrator charged after the inventory step failed for good.
  charge_without_reservation(o, choice) {
    const final = finalOf(o.messages)
    if (final?.type !== 'order.cancelled' || ofType(o.messages, 'inventory.reserved').length > 0) return undefined
    const charge = as(command('charge_payment', { ...ids(o), payload: { amount: 100, attempt: 1 } }, 0, fresh(o, 1)))
    const replies =
      choice % 2 === 0
        ? [as(event('payment.failed', { ...ids(o), payload: { reason: 'card declined', retryable: false, attempt: 1 } }, 0, fresh(o, 2)))]
        : [
            as(event('payment.succeeded', { ...ids(o), payload: { amount: 100, payment_id: fresh(o, 3), attempt: 1 } }, 0, fresh(o, 4))),
            as(command('refund_payment', { ...ids(o), payload: { amount: 100, payment_id: fresh(o, 3), attempt: 1 } }, 0, fresh(o, 5))),
            as(event('payment.refunded', { ...ids(o), payload: { amount: 100, payment_id: fresh(o, 3), attempt: 1 } }, 0, fresh(o, 6))),
          ]
    return insertAfter(o.messages, (m) => m === ofType(o.messages, 'order.created')[0], [charge, ...replies])
  },

  // Completed with the money never taken (the payment step skipped), or taken and given back.
  completed_without_payment(o, choice) {
    const final = finalOf(o.messages)
    if (final?.type !== 'order.completed') return undefined
    if (choice % 2 === 0) return o.messages.filter((m) => m.type !== 'payment.succeeded')
    const charge = ofType(o.messages, 'payment.succeeded')[0]!
    const refund = as(event('payment.refunded', { ...ids(o), payload: { amount: charge.payload.amount, payment_id: charge.payload.payment_id, attempt: 1 } }, 0, fresh(o, 1)))
    return insertAfter(o.messages, (m) => m === charge, [refund])
  },

  // Cancelled while a compensation never took effect: its confirmation is not in the log.
  cancelled_with_effect_standing(o, choice) {
    if (finalOf(o.messages)?.type !== 'order.cancelled') return undefined
    const undone = [...ofType(o.messages, 'inventory.reservation-cancelled'), ...ofType(o.messages, 'payment.refunded')].filter((m) => typeof (m.payload.reservation_id ?? m.payload.payment_id) === 'string')
    if (undone.length === 0) return undefined
    const pick = undone[choice % undone.length]!
    const id = pick.payload.reservation_id ?? pick.payload.payment_id
    return o.messages.filter((m) => !(m.type === pick.type && (m.payload.reservation_id ?? m.payload.payment_id) === id))
  },

  // The orchestrator settled the saga twice: the same outcome again, or the other one.
  multiple_final_events(o, choice) {
    const final = finalOf(o.messages)
    if (!final) return undefined
    const type = choice % 2 === 0 ? final.type : FINALS.find((t) => t !== final.type)!
    return insertAfter(o.messages, (m) => m === final, [as(event(type, { ...ids(o), payload: { reason: 'settled again' } }, 0, fresh(o, 1)))])
  },

  // The saga never ended: its final event is nowhere, however many copies there were. (A saga
  // that said it was stuck and was settled later is then stuck, which the stuck case covers.)
  unfinished(o) {
    const final = finalOf(o.messages)
    if (!final || ofType(o.messages, 'saga.stuck').length > 0) return undefined
    return o.messages.filter((m) => m.type !== final.type)
  },

  // Inventory never confirmed the release: the compensation ran out of attempts, and the
  // orchestrator said so instead of resending for ever.
  stuck(o) {
    const release = ofType(o.messages, 'cancel_reservation')[0]
    if (finalOf(o.messages)?.type !== 'order.cancelled' || !release || ofType(o.messages, 'saga.stuck').length > 0) return undefined
    const kept = o.messages.filter((m) => !FINALS.includes(m.type) && m.type !== 'inventory.reservation-cancelled' && m.type !== 'payment.refunded')
    const stuck = as(event('saga.stuck', { ...ids(o), payload: { step: 'reserve_inventory', attempt: 2, reason: 'compensation of reserve_inventory (cancel_reservation) not confirmed after 2 attempts' } }, 0, fresh(o, 1)))
    return [...kept, stuck]
  },

  // A later record reuses an earlier one's message_id with another type or payload; every
  // consumer skips it as a duplicate, so what it says is silently lost.
  message_id_conflict(o, choice) {
    const original = o.messages[choice % o.messages.length]!
    let altered: Message
    if (choice % 3 === 0) {
      const type = original.type === 'order.cancelled' ? 'order.completed' : 'order.cancelled'
      const { command_type: _command, ...rest } = original
      altered = { ...rest, type, event_type: type }
    } else {
      altered = { ...original, payload: { ...original.payload, attempt: (typeof original.payload.attempt === 'number' ? original.payload.attempt : 1) + 1 } }
    }
    return insertAfter(o.messages, (m) => m === original, [altered])
  },
}
