// A saga with a parallel stage: the stock is reserved and the card authorised at the same time,
// then the payment is captured. Run it: npx sagactl dev --saga examples/parallel-saga/saga.js
//
// Each step's code runs in its participant (`sagactl start stock|card|capture`). The card declines
// an order over its limit (amount above 10000) after a second's thought, so the reservation is
// usually done by then, and undone: the branch that completed is compensated, then the saga ends.
import { defineSaga, defineStep, parallel } from 'sagactl/saga'

const CARD_LIMIT = 10_000
const pause = (ms, signal) => new Promise((resolve) => { const t = setTimeout(resolve, ms); signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true }) })

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

const authorise = defineStep({
  role: 'card',
  topic: { name: 'card.commands', partitions: 4 },
  command: 'authorise_card',
  succeeded: 'card.authorised',
  failed: 'card.declined',
  compensation: { command: 'void_authorisation', confirmed: 'card.voided' },
  effectId: 'authorisation_id',
  act: async (command, ctx) => {
    if (command.payload.amount <= CARD_LIMIT) return { ok: true, payload: { authorisation_id: `auth-${ctx.idempotencyKey.slice(0, 12)}` } }
    await pause(1_000, ctx.signal)
    return { declined: `over the card limit of ${CARD_LIMIT}` }
  },
  undo: async () => ({ ok: true, payload: {} }),
})

const capture = defineStep({
  role: 'capture',
  topic: { name: 'capture.commands', partitions: 4 },
  command: 'capture_payment',
  succeeded: 'payment.captured',
  failed: 'payment.capture-failed',
  compensation: { command: 'refund_capture', confirmed: 'capture.refunded' },
  effectId: 'capture_id',
  act: async (command, ctx) => ({ ok: true, payload: { capture_id: `cap-${ctx.idempotencyKey.slice(0, 12)}` } }),
  undo: async () => ({ ok: true, payload: {} }),
})

export default defineSaga({
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [parallel(reserve, authorise), capture],
})
