import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { System, waitFor } from './harness.js'

describe('POST /orders refuses malformed input and publishes nothing for it', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(['api'])
  })
  afterAll(async () => {
    await system?.stop()
  })

  const cases: [string, string, RegExp][] = [
    ['not JSON at all', '{"items": [', /JSON/],
    ['amount missing', JSON.stringify({ user_id: 'u', items: [{ sku: 'a', qty: 1 }] }), /amount/],
    ['amount as a string', JSON.stringify({ user_id: 'u', items: [{ sku: 'a', qty: 1 }], amount: '999' }), /amount/],
    ['amount zero', JSON.stringify({ user_id: 'u', items: [{ sku: 'a', qty: 1 }], amount: 0 }), /amount/],
    ['items not an array', JSON.stringify({ user_id: 'u', items: 'book', amount: 5 }), /items/],
    ['an item with qty 0', JSON.stringify({ user_id: 'u', items: [{ sku: 'a', qty: 0 }], amount: 5 }), /items\/0\/qty/],
    ['an item without sku', JSON.stringify({ user_id: 'u', items: [{ qty: 1 }], amount: 5 }), /sku/],
    ['user_id a number', JSON.stringify({ user_id: 7, items: [], amount: 5 }), /user_id/],
    ['an unknown field', JSON.stringify({ user_id: 'u', items: [], amount: 5, discount: 100 }), /additional properties/],
  ]

  it.each(cases)('%s → 400 naming the field', async (_name, body, field) => {
    const response = await fetch(`${system.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect(response.status).toBe(400)
    const answer = (await response.json()) as { message: string }
    expect(answer.message).toMatch(field)
  })

  it('after all of them, the only message on any topic is the one valid order', async () => {
    const { order_id } = await system.postOrder()
    const events = await waitFor(async () => {
      const all = await system.read('orderEvents')
      return all.length > 0 ? all : undefined
    }, 'the valid order on order.events')
    expect(events.map((e) => e.message?.order_id)).toEqual([order_id])
    for (const topic of ['inventoryCommands', 'paymentCommands', 'dlq', 'control'] as const) {
      expect(await system.read(topic)).toEqual([])
    }
  })
})
