import { defineStep } from '../saga/define.js'

declare module '../names.js' {
  interface ParticipantRoles {
    inventory: true
  }
}

/** Reserve the goods; undone by cancelling the reservation. Out of stock is final. */
export const inventory = defineStep({
  role: 'inventory',
  topic: { name: 'inventory.commands', partitions: 4 },
  command: 'reserve_inventory',
  succeeded: 'inventory.reserved',
  failed: 'inventory.reserve-failed',
  compensation: { command: 'cancel_reservation', confirmed: 'inventory.reservation-cancelled' },
  effectId: 'reservation_id',
  participant: { echo: ['items'], failure: { reason: 'out of stock', retryable: false }, successRate: { env: 'INVENTORY_SUCCESS_RATE', default: 0.8 } },
  verify: {
    double: { kind: 'double_reservation', rule: 'one reservation per saga', detail: 'different reservations' },
    completedWithout: { kind: 'completed_without_reservation', rule: 'completed ⇒ one reservation held', never: 'nothing was ever reserved', undone: 'its reservation was released' },
    cancelledStanding: { rule: 'cancelled ⇒ nothing held', detail: 'reservation(s) still held' },
    undoneTwice: 'reservation {id} cancelled {n} times',
  },
  notifier: {
    succeeded: (p) => `reserved ${String(p.reservation_id)}`,
    failed: 'reserve',
    confirmed: (p) => `reservation ${String(p.reservation_id)} cancelled`,
  },
})
