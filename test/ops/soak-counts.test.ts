import http from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterEach, describe, expect, it } from 'vitest'

import { countFallback, countKill, emptyCounts, fallbackCause, total, type ApiAttempt } from '../../src/ops/soak-counts.js'

// The causes are read off what fetch really throws, from servers that misbehave the way a killed
// or stuck api does; no broker needed.
const servers: http.Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((resolve) => s.close(resolve))
  }
})

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`
}

/** As soak does it: POST, and on a 202 read the body; anything thrown on the way is the attempt. */
async function attempt(url: string, timeoutMs = 2000): Promise<ApiAttempt> {
  try {
    const response = await fetch(url, { method: 'POST', body: '{}', signal: AbortSignal.timeout(timeoutMs) })
    if (response.status === 202) await response.json()
    return { status: response.status }
  } catch (error) {
    return { error }
  }
}

describe('fallbackCause: why an order went straight to Kafka', () => {
  it('given nothing listening on the api port, then api_down', async () => {
    const url = await serve(() => undefined)
    await new Promise((resolve) => servers.pop()!.close(resolve))
    expect(fallbackCause(await attempt(url))).toBe('api_down')
  })

  it('given an api that never answers, then timeout', async () => {
    const url = await serve(() => undefined)
    expect(fallbackCause(await attempt(url, 200))).toBe('timeout')
  })

  it('given an api that dies with the request open, then connection_lost', async () => {
    const url = await serve((req) => req.socket.destroy())
    expect(fallbackCause(await attempt(url))).toBe('connection_lost')
  })

  it('given an api that dies half-way through its 202, then connection_lost', async () => {
    const url = await serve((req, res) => {
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('{"order_id"', () => req.socket.destroy())
    })
    expect(fallbackCause(await attempt(url))).toBe('connection_lost')
  })

  it.each([503, 500, 400, 422])('given an api that answers %i, then http_ and that status', async (status) => {
    const url = await serve((_req, res) => res.writeHead(status).end('{}'))
    expect(fallbackCause(await attempt(url))).toBe(`http_${status}`)
  })

  it('given a 202, then no fallback at all', () => {
    expect(fallbackCause({ status: 202 })).toBeUndefined()
  })

  it('given something else thrown, then error rather than a guess', () => {
    expect(fallbackCause({ error: new SyntaxError('Unexpected token') })).toBe('error')
    expect(fallbackCause({ error: 'a string' })).toBe('error')
  })
})

describe('the soak counters', () => {
  it('given kills seen to exit and kills of a role already down, then only the first count as kills', () => {
    const counts = emptyCounts()
    countKill(counts, 'payment', true)
    countKill(counts, 'payment', false)
    countKill(counts, 'api@2', true)
    countKill(counts, 'api@2', true)
    expect(counts.kills).toEqual({ payment: 1, 'api@2': 2 })
    expect(counts.kills_skipped).toEqual({ payment: 1 })
    expect(total(counts.kills)).toBe(3)
  })

  it('given fallbacks of several causes, then each is counted under its own and they add up', () => {
    const counts = emptyCounts()
    for (const cause of ['api_down', 'api_down', 'timeout', 'http_503'] as const) countFallback(counts, cause)
    expect(counts.via_kafka_by_cause).toEqual({ api_down: 2, timeout: 1, http_503: 1 })
    expect(total(counts.via_kafka_by_cause)).toBe(4)
  })
})
