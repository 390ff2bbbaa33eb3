import type { SagaDefinition } from './saga.js'

/**
 * The order saga, as the user described it: reserve the goods, then charge; if anything fails
 * for good, undo what was done, newest first. Retry policy comes from configuration.
 */
export const orderSaga: SagaDefinition = {
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [
    {
      name: 'reserve_inventory',
      command: { type: 'reserve_inventory', topic: 'inventoryCommands' },
      succeeded: 'inventory.reserved',
      failed: 'inventory.reserve-failed',
      effectId: 'reservation_id',
      compensation: { type: 'cancel_reservation', topic: 'inventoryCommands', confirmed: 'inventory.reservation-cancelled' },
    },
    {
      name: 'charge_payment',
      command: { type: 'charge_payment', topic: 'paymentCommands' },
      succeeded: 'payment.succeeded',
      failed: 'payment.failed',
      effectId: 'payment_id',
      compensation: { type: 'refund_payment', topic: 'paymentCommands', confirmed: 'payment.refunded' },
    },
  ],
}
