import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { CANCEL_REQUESTED, PAUSE_REQUESTED, RESUME_REQUESTED } from '../../../src/saga/decide.js'
import { buildApp } from '../../../src/services/api/app.js'
import { ORDER_SCOPE, type OrderView } from '../../../src/services/api/orders.js'
import { MemoryApi } from './memory-api.js'

const order = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }
const json = { 'content-type': 'application/json' }

const KINDS = [
  ['cancel', CANCEL_REQUESTED],
  ['pause', PAUSE_REQUESTED],
  ['resume', RESUME_REQUESTED],
] as const

describe.each(KINDS)('POST /orders/:order_id/%s', (kind, type) => {
  let memory: MemoryApi
  let app: FastifyInstance
  let placed: { order_id: string; saga_id: string }
  const ask = (id: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/orders/${id}/${kind}`, headers: body === undefined ? headers : { ...json, ...headers }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) })

  beforeEach(async () => {
    memory = new MemoryApi()
    app = buildApp(memory.deps)
    placed = (await app.inject({ method: 'POST', url: '/orders', headers: json, payload: order })).json()
    memory.published.length = 0
  })
  afterEach(async () => {
    await app.close()
  })

  it('given a pending order, when asked with a reason, then 202 and one request on order.events for the order, naming the reason and the api', async () => {
    const response = await ask(placed.order_id, { reason: 'customer changed their mind' })
    expect(response.statusCode).toBe(202)
    const body = response.json()
    expect(body).toEqual({ order_id: placed.order_id, saga_id: placed.saga_id, status: `${kind}_requested`, request_id: expect.any(String) })
    expect(memory.published).toEqual([expect.objectContaining({ event_type: type, order_id: placed.order_id, saga_id: placed.saga_id, message_id: body.request_id, payload: { reason: 'customer changed their mind', requested_by: 'api' } })])
  })

  it('given a pending order, when asked with no body at all, then 202 with an empty reason (the orchestrator says "no reason given")', async () => {
    const response = await ask(placed.order_id)
    expect(response.statusCode).toBe(202)
    expect(memory.published.map((m) => m.payload)).toEqual([{ reason: '', requested_by: 'api' }])
  })

  it('given the same Idempotency-Key twice, then the same request_id and the same message: the orchestrator takes it once', async () => {
    const first = await ask(placed.order_id, { reason: 'x' }, { 'idempotency-key': 'k-1' })
    const second = await ask(placed.order_id, { reason: 'x' }, { 'idempotency-key': 'k-1' })
    expect(second.json().request_id).toBe(first.json().request_id)
    expect(memory.published.map((m) => m.message_id)).toEqual([first.json().request_id, first.json().request_id])
    expect((await ask(placed.order_id, { reason: 'x' }, { 'idempotency-key': 'k-2' })).json().request_id).not.toBe(first.json().request_id)
  })

  it.each(['completed', 'cancelled'] as const)('given a %s order, then 409 with the final status, and nothing published', async (status) => {
    const view = memory.store.get<OrderView>(ORDER_SCOPE, placed.order_id)!
    memory.store.put(ORDER_SCOPE, placed.order_id, { ...view, status })
    const response = await ask(placed.order_id, { reason: 'too late' })
    expect(response.statusCode).toBe(409)
    expect(response.json()).toEqual({ statusCode: 409, error: 'Conflict', message: `order ${placed.order_id} has already ended: ${status}; nothing changed`, status })
    expect(memory.published).toEqual([])
  })

  it('given an unknown order, then 404 and nothing published', async () => {
    const response = await ask('no-such-order', {})
    expect(response.statusCode).toBe(404)
    expect(response.json().message).toBe('no order no-such-order')
    expect(memory.published).toEqual([])
  })

  it.each([
    ['a reason that is not a string', { reason: 42 }, /body\.reason must be/],
    ['an unknown field', { why: 'x' }, /body\.why is not a known field/],
    ['a reason over 500 characters', { reason: 'x'.repeat(501) }, /body\.reason must be a string of up to 500 characters/],
  ])('given %s, then 400 naming the field, and nothing published', async (_case, body, message) => {
    const response = await ask(placed.order_id, body)
    expect(response.statusCode).toBe(400)
    expect(response.json().message).toMatch(message)
    expect(memory.published).toEqual([])
  })
})

describe('one Idempotency-Key across kinds', () => {
  it('given the same key on a pause and then a resume, then two requests with different ids: the key names one request of each kind', async () => {
    const memory = new MemoryApi()
    const app = buildApp(memory.deps)
    try {
      const placed = (await app.inject({ method: 'POST', url: '/orders', headers: json, payload: order })).json<{ order_id: string }>()
      const headers = { 'idempotency-key': 'hold-1' }
      const paused = (await app.inject({ method: 'POST', url: `/orders/${placed.order_id}/pause`, headers })).json<{ request_id: string }>()
      const resumed = (await app.inject({ method: 'POST', url: `/orders/${placed.order_id}/resume`, headers })).json<{ request_id: string }>()
      expect(resumed.request_id).not.toBe(paused.request_id)
      expect(memory.published.slice(1).map((m) => [m.event_type, m.message_id])).toEqual([
        [PAUSE_REQUESTED, paused.request_id],
        [RESUME_REQUESTED, resumed.request_id],
      ])
    } finally {
      await app.close()
    }
  })
})
