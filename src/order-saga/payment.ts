import { defineStep } from '../saga/define.js'

declare module '../names.js' {
  interface ParticipantRoles {
    payment: true
  }
}

/** Charge the order's amount; undone by a refund. A declined card may be retried. */
export const payment = defineStep({
  role: 'payment',
  topic: { name: 'payment.commands', partitions: 4 },
  command: 'charge_payment',
  succeeded: 'payment.succeeded',
  failed: 'payment.failed',
  compensation: { command: 'refund_payment', confirmed: 'payment.refunded' },
  effectId: 'payment_id',
  participant: { echo: ['amount'], failure: { reason: 'card declined', retryable: true }, successRate: { env: 'PAYMENT_SUCCESS_RATE', default: 0.7 } },
  verify: {
    double: { kind: 'double_charge', rule: 'one charge per saga', detail: 'different payments' },
    completedWithout: { kind: 'completed_without_payment', rule: 'completed ⇒ one net charge', never: 'nothing was ever charged', undone: 'its payment was refunded' },
    cancelledStanding: { rule: 'cancelled ⇒ no net charge', detail: 'charge(s) not refunded' },
    undoneTwice: 'payment {id} refunded {n} times',
    withoutPrevious: { kind: 'charge_without_reservation', rule: 'no charge after an inventory failure', taken: 'payment taken without a reservation', sent: 'charge_payment sent without a reservation' },
  },
  notifier: {
    succeeded: (p) => `charged ${String(p.amount)} as ${String(p.payment_id)}`,
    failed: 'charge',
    confirmed: (p) => `payment ${String(p.payment_id)} refunded`,
  },
})
