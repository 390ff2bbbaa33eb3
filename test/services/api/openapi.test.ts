import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { MAX_DEADLINE_MS } from '../../../src/order-schema.js'
import { buildApp, DEFAULT_API_SETTINGS } from '../../../src/services/api/app.js'
import { MemoryApi } from './memory-api.js'

interface OpenApi {
  openapi: string
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>
}

const order = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }
const json = { 'content-type': 'application/json' }

/** Requests that make each route answer each way it can; the document must name every answer. */
const PROBES: { why: string; route: string; first?: InjectOptions; request: InjectOptions; status: number }[] = [
  { why: 'placed', route: 'POST /orders', request: { method: 'POST', url: '/orders', headers: json, payload: order }, status: 202 },
  { why: 'breaks the schema', route: 'POST /orders', request: { method: 'POST', url: '/orders', headers: json, payload: { ...order, amount: '999' } }, status: 400 },
  { why: 'over 256 KiB', route: 'POST /orders', request: { method: 'POST', url: '/orders', headers: json, payload: JSON.stringify({ ...order, pad: 'x'.repeat(300_000) }) }, status: 413 },
  { why: 'not JSON', route: 'POST /orders', request: { method: 'POST', url: '/orders', headers: { 'content-type': 'application/xml' }, payload: '<order/>' }, status: 415 },
  {
    why: 'key reused with another body',
    route: 'POST /orders',
    first: { method: 'POST', url: '/orders', headers: { ...json, 'idempotency-key': 'k1' }, payload: order },
    request: { method: 'POST', url: '/orders', headers: { ...json, 'idempotency-key': 'k1' }, payload: { ...order, amount: 1 } },
    status: 422,
  },
  { why: 'unknown order', route: 'GET /orders/{order_id}', request: { method: 'GET', url: '/orders/nope' }, status: 404 },
  { why: 'cancel an unknown order', route: 'POST /orders/{order_id}/cancel', request: { method: 'POST', url: '/orders/nope/cancel' }, status: 404 },
  { why: 'cancel with a bad body', route: 'POST /orders/{order_id}/cancel', request: { method: 'POST', url: '/orders/nope/cancel', headers: json, payload: { reason: 1 } }, status: 400 },
  { why: 'an awaited event for an unknown order', route: 'POST /orders/{order_id}/events/{type}', request: { method: 'POST', url: '/orders/nope/events/order.approved' }, status: 404 },
  { why: 'an event no step waits for', route: 'POST /orders/{order_id}/events/{type}', request: { method: 'POST', url: '/orders/nope/events/order.teleported' }, status: 400 },
  { why: 'pause an unknown order', route: 'POST /orders/{order_id}/pause', request: { method: 'POST', url: '/orders/nope/pause' }, status: 404 },
  { why: 'pause with a bad body', route: 'POST /orders/{order_id}/pause', request: { method: 'POST', url: '/orders/nope/pause', headers: json, payload: { why: 'x' } }, status: 400 },
  { why: 'resume an unknown order', route: 'POST /orders/{order_id}/resume', request: { method: 'POST', url: '/orders/nope/resume' }, status: 404 },
  { why: 'resume with a bad body', route: 'POST /orders/{order_id}/resume', request: { method: 'POST', url: '/orders/nope/resume', headers: json, payload: { reason: 1 } }, status: 400 },
  { why: 'healthy', route: 'GET /healthz', request: { method: 'GET', url: '/healthz' }, status: 200 },
]

describe('the OpenAPI document at /docs/json matches the routes the api registers', () => {
  let memory: MemoryApi
  let app: FastifyInstance
  const registered: { method: string; url: string; hidden: boolean }[] = []

  beforeEach(async () => {
    memory = new MemoryApi()
    app = buildApp(memory.deps, { ...DEFAULT_API_SETTINGS, awaitedEvents: ['order.approved'] })
    registered.length = 0
    // Added before ready(), so it sees every route the plugins register, the documented or not.
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) registered.push({ method, url: r.url, hidden: (r.schema as { hide?: boolean } | undefined)?.hide === true })
    })
    await app.ready()
  })
  afterEach(async () => {
    await app.close()
  })

  async function document(): Promise<OpenApi> {
    const response = await app.inject({ method: 'GET', url: '/docs/json' })
    expect(response.statusCode).toBe(200)
    return response.json<OpenApi>()
  }

  it('is OpenAPI 3 and names every registered route with its methods, and nothing else', async () => {
    const doc = await document()
    expect(doc.openapi).toMatch(/^3\./)
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    const served = registered.filter((r) => !r.hidden && r.method !== 'HEAD' && !r.url.startsWith('/docs')).map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`)
    expect(served.length).toBeGreaterThanOrEqual(3)
    expect(documented.sort()).toEqual(served.sort())
  })

  it('names each status code a route answers with, and only those', async () => {
    const doc = await document()
    const seen = new Map<string, Set<string>>()
    for (const probe of PROBES) {
      if (probe.first) await app.inject(probe.first)
      const response = await app.inject(probe.request)
      expect(response.statusCode, probe.why).toBe(probe.status)
      seen.set(probe.route, (seen.get(probe.route) ?? new Set()).add(String(probe.status)))
    }
    memory.deps.health = async () => ({ ok: false, reason: 'the Kafka broker at 127.0.0.1:9 does not answer' })
    const degraded = await app.inject({ method: 'GET', url: '/healthz' })
    expect(degraded.statusCode).toBe(503)
    expect(degraded.json()).toEqual({ status: 'degraded', role: 'api', reason: 'the Kafka broker at 127.0.0.1:9 does not answer' })
    seen.get('GET /healthz')!.add('503')
    // A known order, for the 200 of GET /orders/{order_id}.
    const placed = (await app.inject({ method: 'POST', url: '/orders', headers: json, payload: order })).json<{ order_id: string }>()
    expect((await app.inject({ method: 'GET', url: `/orders/${placed.order_id}` })).statusCode).toBe(200)
    seen.get('GET /orders/{order_id}')!.add('200')
    // The same order paused, resumed, cancelled and sent an awaited event (202), then, once the read model says it ended, refused (409).
    const requests = ['pause', 'resume', 'cancel', 'events/order.approved'] as const
    const routeOf = (kind: (typeof requests)[number]) => `POST /orders/{order_id}/${kind.replace('order.approved', '{type}')}`
    for (const kind of requests) {
      expect((await app.inject({ method: 'POST', url: `/orders/${placed.order_id}/${kind}` })).statusCode, kind).toBe(202)
      seen.get(routeOf(kind))!.add('202')
    }
    memory.store.put('order', placed.order_id, { ...memory.store.get<object>('order', placed.order_id), status: 'completed' })
    for (const kind of requests) {
      expect((await app.inject({ method: 'POST', url: `/orders/${placed.order_id}/${kind}` })).statusCode, kind).toBe(409)
      seen.get(routeOf(kind))!.add('409')
    }

    const documented = new Map<string, Set<string>>(Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]): [string, Set<string>] => [`${m.toUpperCase()} ${p}`, new Set(Object.keys(op.responses))])))
    expect([...documented.keys()].sort()).toEqual([...seen.keys()].sort())
    for (const [route, codes] of seen) expect([...documented.get(route)!].sort(), route).toEqual([...codes].sort())
  })

  it('documents the order body from the one order schema, bounds included', async () => {
    const doc = await document()
    const body = doc.paths['/orders']!.post!.requestBody as { content: Record<string, { schema: { properties: { amount: { maximum: number } } } }> }
    expect(body.content['application/json']!.schema.properties.amount.maximum).toBe(100_000_000)
  })

  it('documents deadline_ms: optional, a whole number of ms from 1 to 30 days, and what it does', async () => {
    const doc = await document()
    const post = doc.paths['/orders']!.post! as unknown as { description: string; requestBody: { content: Record<string, { schema: { required: string[]; properties: Record<string, { type: string; minimum: number; maximum: number }> } }> } }
    const schema = post.requestBody.content['application/json']!.schema
    expect(schema.properties.deadline_ms).toMatchObject({ type: 'integer', minimum: 1, maximum: MAX_DEADLINE_MS })
    expect(schema.required).not.toContain('deadline_ms')
    expect(post.description).toMatch(/deadline_ms .*"deadline passed"/)
  })

  it('serves the Swagger UI at /docs', async () => {
    const response = await app.inject({ method: 'GET', url: '/docs/' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/text\/html/)
    expect(response.body).toMatch(/swagger/i)
  })
})
