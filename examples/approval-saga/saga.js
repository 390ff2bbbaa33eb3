// A saga that waits for a person: the stock is reserved, then the order waits for
// `order.approved` (sent by another system to order.events, or over HTTP), then the card is
// charged. With no approval in time the reservation is undone and the order cancelled.
// Run it: npx sagactl dev --saga examples/approval-saga/saga.js
// Approve: curl -X POST localhost:3000/orders/<order_id>/events/order.approved -H 'content-type: application/json' -d '{"approved_by":"ops"}'
import { awaitEvent, defineSaga, defineStep } from 'sagactl/saga'

// How long an order waits for its approval; APPROVAL_TIMEOUT_MS shortens it for a demo or a test.
const APPROVAL_TIMEOUT_MS = Number(process.env.APPROVAL_TIMEOUT_MS ?? 10 * 60_000)

const reserve = defineStep({
  role: 'stock',
  topic: { name: 'stock.commands', partitions: 4 },
  command: 'reserve_stock',
  succeeded: 'stock.reserved',
  failed: 'stock.reserve-failed',
  compensation: { command: 'release_stock', confirmed: 'stock.released' },
  effectId: 'reservation_id',
  act: async (command, ctx) => ({ ok: true, payload: { reservation_id: `res-${ctx.idempotencyKey.slice(0, 12)}` } }),
  undo: async () => ({ ok: true, payload: {} }),
})

const charge = defineStep({
  role: 'bank',
  topic: { name: 'bank.commands', partitions: 4 },
  command: 'charge_card',
  succeeded: 'card.charged',
  failed: 'card.charge-failed',
  compensation: { command: 'refund_card', confirmed: 'card.refunded' },
  effectId: 'charge_id',
  act: async (command, ctx) => ({ ok: true, payload: { charge_id: `chg-${ctx.idempotencyKey.slice(0, 12)}` } }),
  undo: async () => ({ ok: true, payload: {} }),
})

export default defineSaga({
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [reserve, awaitEvent({ name: 'approval', event: 'order.approved', timeoutMs: APPROVAL_TIMEOUT_MS, onTimeout: 'cancel' }), charge],
})
