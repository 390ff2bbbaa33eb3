import http from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { StepContext } from '../../src/saga/define.js'
import { Circuit, httpParticipant } from '../../src/services/http-bridge.js'

interface Seen {
  path: string
  key: string
  auth: string
  body: Record<string, unknown>
}

describe('the HTTP bridge: a step’s participant as calls to an existing service', () => {
  const seen: Seen[] = []
  let answer: (path: string) => { status: number; body?: unknown; delayMs?: number } = () => ({ status: 200, body: {} })
  let server: http.Server
  let base = ''
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let raw = ''
      req.on('data', (c: Buffer) => (raw += c.toString()))
      req.on('end', () => {
        seen.push({ path: req.url ?? '', key: String(req.headers['idempotency-key']), auth: String(req.headers.authorization ?? ''), body: JSON.parse(raw) as Record<string, unknown> })
        const a = answer(req.url ?? '')
        setTimeout(() => res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body === undefined ? '' : JSON.stringify(a.body)), a.delayMs ?? 0)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const ctx = (signal = new AbortController().signal): StepContext => ({ idempotencyKey: 'key-1', attempt: 2, now: 0, log: { info: () => {}, warn: () => {}, error: () => {} }, signal })
  const command = { type: 'reserve_inventory', order_id: 'o-1', saga_id: 's-1', payload: { items: [{ sku: 'a', qty: 1 }], attempt: 2 } }

  it('given a 2xx, then the step is done with the answer’s fields; the call carried the key, the token and the command', async () => {
    seen.length = 0
    answer = () => ({ status: 201, body: { reservation_id: 'r-9' } })
    const { act } = httpParticipant(base, { token: 'secret' })
    expect(await act(command, ctx())).toEqual({ ok: true, payload: { reservation_id: 'r-9' } })
    expect(seen).toEqual([{ path: '/api/reserve_inventory', key: 'key-1', auth: 'Bearer secret', body: { items: [{ sku: 'a', qty: 1 }], attempt: 2, order_id: 'o-1', saga_id: 's-1' } }])
  })

  it('given 409 or 422, then declined with the service’s reason (FastAPI’s detail too); other statuses can be named', async () => {
    answer = () => ({ status: 422, body: { detail: 'out of stock' } })
    expect(await httpParticipant(base).act(command, ctx())).toEqual({ declined: 'out of stock' })
    answer = () => ({ status: 409, body: { reason: 'already cancelled' } })
    expect(await httpParticipant(base).act(command, ctx())).toEqual({ declined: 'already cancelled' })
    answer = () => ({ status: 402, body: { reason: 'card declined' } })
    expect(await httpParticipant(base, { declined: [402] }).act(command, ctx())).toEqual({ declined: 'card declined' })
  })

  it('given a 5xx, a refused connection or no answer in time, then a throw: a transient failure, retried', async () => {
    answer = () => ({ status: 503, body: { detail: 'busy' } })
    await expect(httpParticipant(base).act(command, ctx())).rejects.toThrow('/api/reserve_inventory answered 503: busy')
    await expect(httpParticipant('http://127.0.0.1:1').act(command, ctx())).rejects.toThrow(/ECONNREFUSED/)
    answer = () => ({ status: 200, body: {}, delayMs: 500 })
    await expect(httpParticipant(base, { timeoutMs: 50 }).act(command, ctx())).rejects.toThrow('did not answer within 50 ms')
    await expect(httpParticipant(base).act(command, ctx(AbortSignal.timeout(50)))).rejects.toThrow(/abort/i)
  })

  it('given failures in a row, then the circuit opens: no call until it has been open a while, and one success closes it', async () => {
    const changes: boolean[] = []
    const outcomes: string[] = []
    seen.length = 0
    answer = () => ({ status: 500, body: {} })
    let clock = 1_000
    const { act } = httpParticipant(base, { circuitFailures: 2, circuitOpenMs: 200, clock: () => clock, observe: { call: (o) => outcomes.push(o), circuit: (open) => changes.push(open) } })
    await expect(act(command, ctx())).rejects.toThrow('answered 500')
    await expect(act(command, ctx())).rejects.toThrow('answered 500')
    await expect(act(command, ctx())).rejects.toThrow('circuit open')
    expect(seen).toHaveLength(2)
    clock += 250
    answer = () => ({ status: 200, body: {} })
    expect(await act(command, ctx())).toEqual({ ok: true, payload: {} })
    expect(seen).toHaveLength(3)
    expect(changes).toEqual([true, false])
    expect(outcomes).toEqual(['failed', 'failed', 'refused-by-circuit', 'ok'])
  })

  it('Circuit: closed until the threshold, open for its time, a failure while half-open opens it again', () => {
    const c = new Circuit(3, 1000)
    c.failed(0)
    c.failed(0)
    expect(c.allows(0)).toBe(true)
    c.failed(0)
    expect(c.allows(999)).toBe(false)
    expect(c.allows(1000)).toBe(true)
    c.failed(1000)
    expect(c.allows(1500)).toBe(false)
    c.succeeded()
    expect(c.allows(1500)).toBe(true)
  })
})
