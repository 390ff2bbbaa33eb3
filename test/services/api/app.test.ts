import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { DEFAULT_ORDER_LIMITS, MAX_DEADLINE_MS } from '../../../src/order-schema.js'
import { buildApp, DEFAULT_API_SETTINGS, type ApiSettings } from '../../../src/services/api/app.js'
import { keyedIds } from '../../../src/services/api/idempotency.js'
import { evolveOrder, ORDER_SCOPE } from '../../../src/services/api/orders.js'
import { ACCEPTED, naming, REFUSED } from '../../order-cases.js'
import { MemoryApi } from './memory-api.js'

const HOUR = 3_600_000
const valid = { user_id: 'u1', items: [{ sku: 'book', qty: 2 }], amount: 1500 }

interface Answer {
  status: number
  body: { order_id: string; saga_id: string; status: string; statusCode: number; error: string; message: string }
}

function api(settings: ApiSettings = DEFAULT_API_SETTINGS): { memory: MemoryApi; app: FastifyInstance; post: (body: unknown, headers?: Record<string, string>) => Promise<Answer> } {
  const memory = new MemoryApi()
  const app = buildApp(memory.deps, settings)
  const post = async (body: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const options: InjectOptions = { method: 'POST', url: '/orders', headers: { 'content-type': 'application/json', ...headers }, payload: typeof body === 'string' ? body : JSON.stringify(body) }
    const response = await app.inject(options)
    return { status: response.statusCode, body: response.json() }
  }
  return { memory, app, post }
}

describe('POST /orders refuses what it cannot honour, and publishes nothing for it', () => {
  let t: ReturnType<typeof api>
  beforeEach(() => {
    t = api()
  })
  afterEach(async () => {
    await t.app.close()
  })

  it.each(REFUSED)('%s → 400 naming the field', async (_case, body, field) => {
    const answer = await t.post(body)
    expect(answer.status).toBe(400)
    expect(answer.body.error).toBe('Bad Request')
    expect(answer.body.message).toMatch(naming('body', field))
    expect(t.memory.published).toEqual([])
    expect(t.memory.rows.size).toBe(0)
  })

  it.each([
    ['not JSON at all', '{"items": [', /JSON/],
    ['an amount written 1e308', '{"items": [], "amount": 1e308}', naming('body', 'amount')],
    ['a qty written 1e300', '{"items": [{"sku": "a", "qty": 1e300}], "amount": 5}', naming('body', 'items[0].qty')],
    ['an amount past 2^53 written in digits', '{"items": [], "amount": 9007199254740993}', naming('body', 'amount')],
    ['the JSON null', 'null', naming('body', '')],
  ])('%s → 400', async (_case, raw, message) => {
    const answer = await t.post(raw)
    expect(answer.status).toBe(400)
    expect(answer.body.message).toMatch(message)
    expect(t.memory.published).toEqual([])
  })

  it('an empty Idempotency-Key → 400 naming the header', async () => {
    const answer = await t.post(valid, { 'idempotency-key': '' })
    expect(answer.status).toBe(400)
    expect(answer.body.message).toMatch(/^headers\["idempotency-key"\] must be a string of 1 to 200 characters/)
    expect(t.memory.published).toEqual([])
  })

  it('an Idempotency-Key over 200 characters → 400 naming the header', async () => {
    const answer = await t.post(valid, { 'idempotency-key': 'k'.repeat(201) })
    expect(answer.status).toBe(400)
    expect(answer.body.message).toMatch(/^headers\["idempotency-key"\] must be/)
  })

  it('a text body → 400: text is not an order', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'text/plain' }, payload: 'amount=5' })
    expect(response.statusCode).toBe(400)
    expect(response.json<{ message: string }>().message).toMatch(naming('body', ''))
  })

  it('a body of a type the api does not read → 415', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/xml' }, payload: '<order/>' })
    expect(response.statusCode).toBe(415)
    expect(response.json()).toMatchObject({ statusCode: 415, error: 'Unsupported Media Type' })
  })

  it('a body over 256 KiB → 413', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...valid, pad: 'x'.repeat(256 * 1024) }) })
    expect(response.statusCode).toBe(413)
    expect(response.json()).toMatchObject({ statusCode: 413, error: 'Payload Too Large' })
    expect(t.memory.published).toEqual([])
  })

  it.each(ACCEPTED)('%s → 202 and one order.created carrying the order', async (_case, body) => {
    const answer = await t.post(body)
    expect(answer.status).toBe(202)
    expect(t.memory.published).toHaveLength(1)
    const created = t.memory.published[0]!
    expect(created).toMatchObject({ event_type: 'order.created', order_id: answer.body.order_id, saga_id: answer.body.saga_id })
    expect(created.payload).toEqual({ user_id: null, ...body })
  })

  it('deadline_ms → order.created carries it after the order fields; a bad one → 400 saying what it must be, nothing published', async () => {
    const answer = await t.post({ ...valid, deadline_ms: 30_000 })
    expect(answer.status).toBe(202)
    expect(t.memory.published.map((e) => e.payload)).toEqual([{ ...valid, deadline_ms: 30_000 }])
    const refused = await t.post({ ...valid, deadline_ms: 2.5 })
    expect(refused.status).toBe(400)
    expect(refused.body.message).toBe(`body.deadline_ms must be an integer from 1 to ${MAX_DEADLINE_MS} (milliseconds, at most 30 days), got 2.5`)
    expect(t.memory.published).toHaveLength(1)
  })

  it('bounds follow the settings (SAGA_MAX_AMOUNT, SAGA_MAX_QTY)', async () => {
    const tight = api({ ...DEFAULT_API_SETTINGS, limits: { maxAmount: 1000, maxQty: 3 } })
    try {
      expect((await tight.post({ items: [{ sku: 'a', qty: 3 }], amount: 1000 })).status).toBe(202)
      const over = await tight.post({ items: [], amount: 1001 })
      expect(over.status).toBe(400)
      expect(over.body.message).toBe('body.amount must be an integer from 1 to 1000 (minor units), got 1001')
      expect((await tight.post({ items: [{ sku: 'a', qty: 4 }], amount: 5 })).body.message).toMatch(naming('body', 'items[0].qty'))
      expect(tight.memory.published).toHaveLength(1)
    } finally {
      await tight.app.close()
    }
    expect(DEFAULT_API_SETTINGS.limits).toEqual(DEFAULT_ORDER_LIMITS)
  })
})

describe('Idempotency-Key', () => {
  let t: ReturnType<typeof api>
  beforeEach(() => {
    t = api()
  })
  afterEach(async () => {
    await t.app.close()
  })

  it('the same key with the same body is the same order: same answer, one order.created', async () => {
    const first = await t.post(valid, { 'idempotency-key': 'k1' })
    const again = await t.post(valid, { 'idempotency-key': 'k1' })
    expect([first.status, again.status]).toEqual([202, 202])
    expect(again.body).toEqual(first.body)
    expect(t.memory.published).toHaveLength(1)
  })

  it('the same body written differently (field order, spacing, user_id absent or null) is the same body', async () => {
    const first = await t.post({ items: [{ sku: 'book', qty: 2 }], amount: 1500 }, { 'idempotency-key': 'k1' })
    const again = await t.post('{ "amount": 1500,\n  "items": [ { "qty": 2, "sku": "book" } ], "user_id": null }', { 'idempotency-key': 'k1' })
    expect(again.status).toBe(202)
    expect(again.body).toEqual(first.body)
    expect(t.memory.published).toHaveLength(1)
  })

  it('the same key with a different body → 422 naming the key and its order; nothing published, the first order untouched', async () => {
    const first = await t.post(valid, { 'idempotency-key': 'k1' })
    const rowsBefore = new Map(t.memory.rows)
    const conflict = await t.post({ ...valid, amount: 1501 }, { 'idempotency-key': 'k1' })
    expect(conflict.status).toBe(422)
    expect(conflict.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity' })
    expect(conflict.body.message).toContain('Idempotency-Key "k1"')
    expect(conflict.body.message).toContain(first.body.order_id)
    expect(conflict.body.message).toMatch(/different request body/)
    expect(t.memory.published).toHaveLength(1)
    expect(t.memory.rows).toEqual(rowsBefore)
    // The conflict does not spoil the key: its own body still gets its order.
    expect((await t.post(valid, { 'idempotency-key': 'k1' })).body).toEqual(first.body)
  })

  it('the same key with another deadline_ms, or without the one it had → 422: the deadline is part of the order', async () => {
    const first = await t.post({ ...valid, deadline_ms: 60_000 }, { 'idempotency-key': 'k1' })
    expect(first.status).toBe(202)
    expect((await t.post({ ...valid, deadline_ms: 60_000 }, { 'idempotency-key': 'k1' })).body).toEqual(first.body)
    expect((await t.post({ ...valid, deadline_ms: 60_001 }, { 'idempotency-key': 'k1' })).status).toBe(422)
    expect((await t.post(valid, { 'idempotency-key': 'k1' })).status).toBe(422)
    expect(t.memory.published).toHaveLength(1)
  })

  it('keys are scoped per user_id: two users with the same key place two orders', async () => {
    const a = await t.post({ ...valid, user_id: 'alice' }, { 'idempotency-key': 'k1' })
    const b = await t.post({ ...valid, user_id: 'bob' }, { 'idempotency-key': 'k1' })
    const anonymous = await t.post({ ...valid, user_id: null }, { 'idempotency-key': 'k1' })
    expect([a.status, b.status, anonymous.status]).toEqual([202, 202, 202])
    expect(new Set([a.body.order_id, b.body.order_id, anonymous.body.order_id]).size).toBe(3)
    expect(t.memory.published).toHaveLength(3)
  })

  it('without a key every POST is a new order', async () => {
    const a = await t.post(valid)
    const b = await t.post(valid)
    expect(a.body.order_id).not.toBe(b.body.order_id)
    expect(t.memory.published).toHaveLength(2)
  })

  it('a key expires after the TTL: then it places a new order with new ids, whatever the body', async () => {
    const first = await t.post(valid, { 'idempotency-key': 'k1' })
    t.memory.now += 24 * HOUR - 1
    expect((await t.post({ ...valid, amount: 7 }, { 'idempotency-key': 'k1' })).status).toBe(422)
    t.memory.now += 1
    const later = await t.post({ ...valid, amount: 7 }, { 'idempotency-key': 'k1' })
    expect(later.status).toBe(202)
    expect(later.body.order_id).not.toBe(first.body.order_id)
    expect(new Set(t.memory.published.map((e) => e.message_id)).size).toBe(2)
    // The new order now holds the key for its own TTL.
    expect((await t.post({ ...valid, amount: 7 }, { 'idempotency-key': 'k1' })).body).toEqual(later.body)
    expect((await t.post(valid, { 'idempotency-key': 'k1' })).status).toBe(422)
  })

  it('the TTL follows the settings (SAGA_IDEMPOTENCY_TTL)', async () => {
    const short = api({ ...DEFAULT_API_SETTINGS, idempotencyTtlMs: 1000 })
    try {
      const first = await short.post(valid, { 'idempotency-key': 'k1' })
      short.memory.now += 1000
      const second = await short.post(valid, { 'idempotency-key': 'k1' })
      expect(second.body.order_id).not.toBe(first.body.order_id)
    } finally {
      await short.app.close()
    }
  })

  it('two api instances given the same key derive the same ids and the same order.created message_id', async () => {
    const other = api()
    try {
      const here = await t.post(valid, { 'idempotency-key': 'k1' })
      const there = await other.post(valid, { 'idempotency-key': 'k1' })
      expect(there.body).toEqual(here.body)
      expect(other.memory.published[0]!.message_id).toBe(t.memory.published[0]!.message_id)
      const ids = keyedIds('u1', 'k1')
      expect(here.body).toMatchObject({ order_id: ids.orderId, saga_id: ids.sagaId })
      expect(t.memory.published[0]!.message_id).toBe(ids.messageId)
    } finally {
      await other.app.close()
    }
  })

  it('an order this instance only read from the log (another instance placed it) is answered, not placed again', async () => {
    const ids = keyedIds('u1', 'k1')
    const created = { event_type: 'order.created', type: 'order.created', order_id: ids.orderId, saga_id: ids.sagaId, message_id: ids.messageId, payload: valid }
    t.memory.store.put(ORDER_SCOPE, ids.orderId, evolveOrder(undefined, created, t.memory.now))
    const answer = await t.post(valid, { 'idempotency-key': 'k1' })
    expect(answer.status).toBe(202)
    expect(answer.body).toMatchObject({ order_id: ids.orderId, saga_id: ids.sagaId })
    expect(t.memory.published).toEqual([])
  })
})

describe('GET /orders/:order_id', () => {
  it('answers the view of a placed order, and 404 for an unknown id', async () => {
    const t = api()
    try {
      const placed = await t.post(valid)
      const found = await t.app.inject({ method: 'GET', url: `/orders/${placed.body.order_id}` })
      expect(found.statusCode).toBe(200)
      expect(found.json()).toMatchObject({ order_id: placed.body.order_id, saga_id: placed.body.saga_id, status: 'pending' })
      const missing = await t.app.inject({ method: 'GET', url: '/orders/nope' })
      expect(missing.statusCode).toBe(404)
    } finally {
      await t.app.close()
    }
  })
})
