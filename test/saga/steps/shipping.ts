import { defineStep } from '../../../src/saga/define.js'

// A third step, for tests only: the whole of what adding a step takes. It lives under test/ so
// the order saga, and the contract, stay as they are.

declare module '../../../src/names.js' {
  interface ParticipantRoles {
    shipping: true
  }
}

/** Hand the goods to a carrier; undone by cancelling the shipment. */
export const shipping = defineStep({
  role: 'shipping',
  topic: { name: 'shipping.commands', partitions: 2 },
  command: 'ship_order',
  succeeded: 'shipping.shipped',
  failed: 'shipping.ship-failed',
  compensation: { command: 'cancel_shipment', confirmed: 'shipping.shipment-cancelled' },
  effectId: 'shipment_id',
  participant: { echo: ['items'], failure: { reason: 'no carrier available', retryable: true }, successRate: { env: 'SHIPPING_SUCCESS_RATE', default: 1 } },
  verify: {
    double: { kind: 'double_shipment', rule: 'one shipment per saga', detail: 'different shipments' },
    completedWithout: { kind: 'completed_without_shipment', rule: 'completed ⇒ one shipment standing', never: 'nothing was ever shipped', undone: 'its shipment was cancelled' },
    cancelledStanding: { rule: 'cancelled ⇒ nothing shipped', detail: 'shipment(s) not cancelled' },
    undoneTwice: 'shipment {id} cancelled {n} times',
    withoutPrevious: { kind: 'shipment_without_charge', rule: 'no shipment after a payment failure', taken: 'shipped without a charge', sent: 'ship_order sent without a charge' },
  },
  notifier: {
    succeeded: (p) => `shipped as ${String(p.shipment_id)}`,
    failed: 'ship',
    confirmed: (p) => `shipment ${String(p.shipment_id)} cancelled`,
  },
})
