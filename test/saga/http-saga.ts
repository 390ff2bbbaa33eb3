import { defineSaga, defineStep, type StepCommand, type StepContext, type StepResult } from '../../src/saga/define.js'

// A saga whose participants do real work: each step calls an HTTP service (the e2e test runs it,
// at HTTP_SAGA_SERVICE) with the step's idempotency key. Loaded with `sagactl start <role> --saga`.

declare module '../../src/names.js' {
  interface ParticipantRoles {
    warehouse: true
    bank: true
    courier: true
  }
}

/** 2xx: done, with the service's answer; 422: declined for good; anything else: a transient failure (thrown). */
async function call(path: string, command: StepCommand, ctx: StepContext): Promise<StepResult> {
  const response = await fetch(`${process.env.HTTP_SAGA_SERVICE}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': ctx.idempotencyKey },
    body: JSON.stringify({ order_id: command.order_id, attempt: ctx.attempt, payload: command.payload }),
    signal: ctx.signal,
  })
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>
  if (response.status === 422) return { declined: String(body.reason ?? 'declined') }
  if (!response.ok) throw new Error(`${path} answered ${response.status}`)
  return { ok: true, payload: body }
}

export const hold = defineStep({
  role: 'warehouse',
  topic: { name: 'warehouse.commands', partitions: 2 },
  command: 'hold_goods',
  succeeded: 'goods.held',
  failed: 'goods.hold-failed',
  compensation: { command: 'release_goods', confirmed: 'goods.released' },
  effectId: 'hold_id',
  act: (command, ctx) => call('/hold', command, ctx),
  undo: (command, ctx) => call('/release', command, ctx),
})

/**
 * The bank is often briefly away: more attempts than the saga's default, close together. A role
 * started with HTTP_SAGA_BANK_ATTEMPTS runs another policy, of the same shape (the test of a
 * policy changed while sagas are in flight).
 */
export const bankRetry = { maxAttempts: Number(process.env.HTTP_SAGA_BANK_ATTEMPTS ?? 5), minDelayMs: 50, maxDelayMs: 150, stepTimeoutMs: 5_000 }

export const charge = defineStep({
  role: 'bank',
  topic: { name: 'bank.commands', partitions: 2 },
  command: 'take_money',
  succeeded: 'money.taken',
  failed: 'money.refused',
  compensation: { command: 'return_money', confirmed: 'money.returned' },
  effectId: 'transfer_id',
  act: (command, ctx) => call('/charge', command, ctx),
  undo: (command, ctx) => call('/refund', command, ctx),
  retry: bankRetry,
})

export const ship = defineStep({
  role: 'courier',
  topic: { name: 'courier.commands', partitions: 2 },
  command: 'book_courier',
  succeeded: 'courier.booked',
  failed: 'courier.refused',
  compensation: { command: 'cancel_courier', confirmed: 'courier.cancelled' },
  // A role started with another value runs a saga of another shape: the test of the definition check.
  effectId: process.env.HTTP_SAGA_COURIER_EFFECT ?? 'parcel_id',
  act: (command, ctx) => call('/ship', command, ctx),
})

export const httpSaga = defineSaga({
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [hold, charge, ship],
})

export default httpSaga
