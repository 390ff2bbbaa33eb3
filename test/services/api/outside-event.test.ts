import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { buildApp, DEFAULT_API_SETTINGS } from '../../../src/services/api/app.js'
import { ORDER_SCOPE, type OrderView } from '../../../src/services/api/orders.js'
import { MemoryApi } from './memory-api.js'

const order = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }
const json = { 'content-type': 'application/json' }

describe('POST /orders/:order_id/events/:type', () => {
  let memory: MemoryApi
  let app: FastifyInstance
  let placed: { order_id: string; saga_id: string }
  const send = (id: string, type: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/orders/${id}/events/${type}`, headers: body === undefined ? headers : { ...json, ...headers }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) })

  beforeEach(async () => {
    memory = new MemoryApi()
    app = buildApp(memory.deps, { ...DEFAULT_API_SETTINGS, awaitedEvents: ['order.approved'] })
    placed = (await app.inject({ method: 'POST', url: '/orders', headers: json, payload: order })).json()
    memory.published.length = 0
  })
  afterEach(async () => {
    await app.close()
  })

  it('given a pending order, when an awaited event is sent, then 202 and that event on order.events, keyed by the order, with the body as payload', async () => {
    const response = await send(placed.order_id, 'order.approved', { approved_by: 'ops' })
    expect(response.statusCode).toBe(202)
    const body = response.json()
    expect(body).toEqual({ order_id: placed.order_id, saga_id: placed.saga_id, type: 'order.approved', message_id: expect.any(String) })
    expect(memory.published).toEqual([expect.objectContaining({ event_type: 'order.approved', order_id: placed.order_id, message_id: body.message_id, payload: { approved_by: 'ops' } })])
  })

  it('given the same event sent twice with the same key (or none), then the same message_id: the saga takes it once; another key is another message', async () => {
    const a = (await send(placed.order_id, 'order.approved', {})).json().message_id
    expect((await send(placed.order_id, 'order.approved')).json().message_id).toBe(a)
    const keyed = (await send(placed.order_id, 'order.approved', {}, { 'idempotency-key': 'k' })).json().message_id
    expect(keyed).not.toBe(a)
    expect((await send(placed.order_id, 'order.approved', {}, { 'idempotency-key': 'k' })).json().message_id).toBe(keyed)
  })

  it('given a type no wait step takes, then 400 naming the ones it takes, and nothing published', async () => {
    const response = await send(placed.order_id, 'order.completed', {})
    expect(response.statusCode).toBe(400)
    expect(response.json().message).toBe('no step of the saga waits for "order.completed": it waits for order.approved')
    expect(memory.published).toEqual([])
  })

  it('given an ended order, then 409 with its status; an unknown order, 404; a body that is not an object, 400', async () => {
    const view = memory.store.get<OrderView>(ORDER_SCOPE, placed.order_id)!
    memory.store.put(ORDER_SCOPE, placed.order_id, { ...view, status: 'completed' })
    const ended = await send(placed.order_id, 'order.approved', {})
    expect(ended.statusCode).toBe(409)
    expect(ended.json()).toMatchObject({ status: 'completed' })
    expect((await send('no-such-order', 'order.approved', {})).statusCode).toBe(404)
    expect((await send(placed.order_id, 'order.approved', [1, 2])).statusCode).toBe(400)
    expect(memory.published).toEqual([])
  })
})
