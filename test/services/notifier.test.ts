import { describe, expect, it } from 'vitest'

import { event, type Message } from '../../src/envelope.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import { describe as line, notifierFor } from '../../src/services/notifier.js'
import { threeStepSaga } from '../saga/three-step-saga.js'

const msg = (type: string, payload: Record<string, unknown>): Message => ({ ...event(type, { order_id: 'abcdef0123', saga_id: 's1', payload }, 0, `m-${type}`), type })
const noop = { get: () => undefined, put: () => undefined }
const ctx = { now: 0, newId: () => 'id', random: () => 0 }

describe('notifier lines, in each step module\'s words', () => {
  it('given the order saga\'s events, then the lines read as they always did', () => {
    expect(line(msg('inventory.reserved', { reservation_id: 'r-1', attempt: 1 }), orderSaga).msg).toBe('order abcdef01 │ inventory │ reserved r-1 (attempt 1)')
    expect(line(msg('payment.succeeded', { amount: 999, payment_id: 'p-1', attempt: 2, repeated: true }), orderSaga).msg).toBe('order abcdef01 │ payment   │ charged 999 as p-1 (attempt 2) [repeated reply]')
    expect(line(msg('payment.failed', { reason: 'card declined', retryable: true, attempt: 1 }), orderSaga).msg).toBe('order abcdef01 │ payment   │ charge FAILED: card declined (attempt 1), will be retried if attempts remain')
    expect(line(msg('inventory.reservation-cancelled', { reservation_id: 'r-1' }), orderSaga).msg).toBe('order abcdef01 │ inventory │ ↩ COMPENSATION: reservation r-1 cancelled')
  })

  it('given a shipping event, then the order saga\'s notifier dead-letters it and the three-step saga\'s tells it', () => {
    const shipped = msg('shipping.shipped', { shipment_id: 'sh-1', attempt: 1 })
    expect(notifierFor(orderSaga).handle(shipped, noop, ctx).reject).toBe('unknown event type "shipping.shipped"')
    const told = notifierFor(threeStepSaga).handle(shipped, noop, ctx)
    expect(told.notices?.[0]).toMatchObject({ level: 'info', msg: 'order abcdef01 │ shipping  │ shipped as sh-1 (attempt 1)', fields: { step: 'shipping' } })
  })
})
