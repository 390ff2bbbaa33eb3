import { describe, expect, it } from 'vitest'

import { event, MAX_MESSAGE_BYTES } from '../src/envelope.js'
import { DEFAULT_ORDER_LIMITS, MAX_DEADLINE_MS, MAX_ITEMS, MAX_SKU_LENGTH, MAX_USER_ID_LENGTH, orderPayload, orderProblem, type Order } from '../src/order-schema.js'
import { ACCEPTED, naming, REFUSED } from './order-cases.js'

const problem = orderProblem(DEFAULT_ORDER_LIMITS)

describe('the order schema', () => {
  it.each(REFUSED)('refuses %s, naming the field', (_case, order, field) => {
    expect(problem(order, 'payload')).toMatch(naming('payload', field))
  })

  it.each(ACCEPTED)('accepts %s', (_case, order) => {
    expect(problem(order, 'payload')).toBeUndefined()
  })

  it('says what the field must be and what it got', () => {
    expect(problem({ items: [], amount: 1e308 }, 'body')).toBe(`body.amount must be an integer from 1 to ${DEFAULT_ORDER_LIMITS.maxAmount} (minor units), got 1e+308`)
  })

  it('says what deadline_ms must be', () => {
    expect(problem({ items: [], amount: 1, deadline_ms: 0 }, 'body')).toBe(`body.deadline_ms must be an integer from 1 to ${MAX_DEADLINE_MS} (milliseconds, at most 30 days), got 0`)
  })

  it('order.created carries deadline_ms only when the order asks for one, so an order without it is the same body as before', () => {
    expect(orderPayload({ items: [], amount: 1 })).toEqual({ user_id: null, items: [], amount: 1 })
    expect(Object.keys(orderPayload({ items: [], amount: 1 }))).not.toContain('deadline_ms')
    expect(orderPayload({ deadline_ms: 5000, amount: 1, items: [] })).toEqual({ user_id: null, items: [], amount: 1, deadline_ms: 5000 })
  })

  it('takes its bounds from the limits it is given', () => {
    const tight = orderProblem({ maxAmount: 500, maxQty: 2 })
    expect(tight({ items: [{ sku: 'a', qty: 2 }], amount: 500 }, 'body')).toBeUndefined()
    expect(tight({ items: [], amount: 501 }, 'body')).toMatch(naming('body', 'amount'))
    expect(tight({ items: [{ sku: 'a', qty: 3 }], amount: 5 }, 'body')).toMatch(naming('body', 'items[0].qty'))
  })

  it('admits no order too big for one message, so an accepted order is never dead-lettered as oversize', () => {
    // Control characters cost six bytes each once serialised (\u0001): the worst case per character.
    const worst = '\u0001'
    const largest: Order = {
      user_id: worst.repeat(MAX_USER_ID_LENGTH),
      items: Array.from({ length: MAX_ITEMS }, () => ({ sku: worst.repeat(MAX_SKU_LENGTH), qty: Number.MAX_SAFE_INTEGER })),
      amount: Number.MAX_SAFE_INTEGER,
      deadline_ms: MAX_DEADLINE_MS,
    }
    expect(orderProblem({ maxAmount: Number.MAX_SAFE_INTEGER, maxQty: Number.MAX_SAFE_INTEGER })(largest, 'payload')).toBeUndefined()
    const envelope = event('order.created', { order_id: crypto.randomUUID(), saga_id: crypto.randomUUID(), payload: orderPayload(largest) }, Date.now())
    expect(Buffer.byteLength(JSON.stringify(envelope))).toBeLessThan(MAX_MESSAGE_BYTES)
  })
})
