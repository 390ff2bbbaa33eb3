import http from 'node:http'

import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { buildApp } from '../../../src/services/api/app.js'
import { MemoryApi } from './memory-api.js'

const order = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }

describe('a method that a known path does not serve is answered 405 with Allow (RFC 9110 §15.5.6)', () => {
  let memory: MemoryApi
  let app: FastifyInstance

  beforeEach(async () => {
    memory = new MemoryApi()
    app = buildApp({ ...memory.deps, metrics: async () => ({ contentType: 'text/plain', text: '' }) })
    await app.ready()
  })
  afterEach(async () => {
    await app.close()
  })

  const CASES: { request: InjectOptions & { method: string; url: string }; allow: string }[] = [
    { request: { method: 'TRACE', url: '/orders' }, allow: 'POST' },
    { request: { method: 'GET', url: '/orders' }, allow: 'POST' },
    { request: { method: 'DELETE', url: '/healthz' }, allow: 'GET, HEAD' },
    { request: { method: 'POST', url: '/healthz?probe=1' }, allow: 'GET, HEAD' },
    { request: { method: 'DELETE', url: '/docs/json' }, allow: 'GET, HEAD' },
    { request: { method: 'PATCH', url: '/orders/6f1c0a52-0000-4000-8000-000000000000' }, allow: 'GET, HEAD' },
    { request: { method: 'OPTIONS', url: '/metrics' }, allow: 'GET, HEAD' },
    { request: { method: 'PUT', url: '/docs/static/index.html' }, allow: 'GET, HEAD' },
  ]

  for (const { request, allow } of CASES) {
    it(`given the api, when ${request.method} ${request.url}, then 405 with Allow: ${allow} and the error body naming both`, async () => {
      const response = await app.inject(request)

      expect(response.statusCode).toBe(405)
      expect(response.headers.allow).toBe(allow)
      const path = request.url.split('?')[0]
      expect(response.json()).toEqual({ statusCode: 405, error: 'Method Not Allowed', message: `${path} does not serve ${request.method}; it serves ${allow}` })
    })
  }

  it('given a body the api would refuse (JSON content type, empty or not JSON), when sent with a method the path does not serve, then still 405: the body is never read', async () => {
    const empty = await app.inject({ method: 'DELETE', url: '/healthz', headers: { 'content-type': 'application/json' } })
    const broken = await app.inject({ method: 'PUT', url: '/orders', headers: { 'content-type': 'application/json' }, payload: '{not json' })
    const xml = await app.inject({ method: 'PUT', url: '/orders', headers: { 'content-type': 'application/xml' }, payload: '<order/>' })

    expect([empty.statusCode, broken.statusCode, xml.statusCode]).toEqual([405, 405, 405])
    expect(xml.headers.allow).toBe('POST')
  })

  it('given a PUT /orders with a valid order, then nothing is placed', async () => {
    const response = await app.inject({ method: 'PUT', url: '/orders', headers: { 'content-type': 'application/json' }, payload: order })

    expect(response.statusCode).toBe(405)
    expect(memory.published).toEqual([])
  })

  it('given an unknown path, whatever the method, then 404 and no Allow', async () => {
    for (const request of [{ method: 'GET', url: '/nope' }, { method: 'TRACE', url: '/orders/x/y' }, { method: 'DELETE', url: '/healthz/' }, { method: 'GET', url: '/ORDERS' }] as InjectOptions[]) {
      const response = await app.inject(request)
      expect(response.statusCode, `${request.method} ${request.url}`).toBe(404)
      expect(response.headers.allow).toBeUndefined()
    }
  })

  it('given the served methods, then they still answer as before', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200)
    expect((await app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/json' }, payload: order })).statusCode).toBe(202)
    expect((await app.inject({ method: 'GET', url: '/orders/unknown' })).statusCode).toBe(404)
  })

  it('given the OpenAPI document, then it says a 405 and its Allow header, in the description and as a reusable response', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ info: { description: string }; components: { responses: Record<string, { headers: Record<string, unknown>; content: Record<string, unknown> }> } }>()

    expect(doc.info.description).toMatch(/405 Method Not Allowed/)
    expect(doc.components.responses.MethodNotAllowed!.headers).toHaveProperty('Allow')
    expect(doc.components.responses.MethodNotAllowed!.content).toHaveProperty('application/json')
  })

  it('given the api on a real socket, when TRACE /orders and DELETE /healthz (with a JSON content type and no body) are sent, then 405 with Allow', async () => {
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const send = (method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; allow: string | undefined }> =>
      new Promise((resolve, reject) => {
        const request = http.request(`${url}${path}`, { method, headers }, (response) => {
          response.resume()
          response.on('end', () => resolve({ status: response.statusCode ?? 0, allow: response.headers.allow }))
        })
        request.on('error', reject)
        request.end()
      })

    expect(await send('TRACE', '/orders')).toEqual({ status: 405, allow: 'POST' })
    expect(await send('DELETE', '/healthz', { 'content-type': 'application/json' })).toEqual({ status: 405, allow: 'GET, HEAD' })
    expect(await send('DELETE', '/docs/json')).toEqual({ status: 405, allow: 'GET, HEAD' })
    expect(await send('DELETE', '/nowhere')).toEqual({ status: 404, allow: undefined })
  })
})
