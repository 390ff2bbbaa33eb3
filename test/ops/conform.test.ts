import http from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterEach, describe, expect, it } from 'vitest'

import { conform, renderConformReport, RULES, type Driver, type Ids, type Reply } from '../../src/ops/conform.js'
import { httpDriver } from '../../src/ops/conform-http.js'
import { inventory } from '../../src/order-saga/inventory.js'
import { payment } from '../../src/order-saga/payment.js'

/** A participant kept in memory that follows the contract: one effect per saga, undo remembered. */
function keeper(): Driver {
  const effects = new Map<string, { id: string; undone: boolean }>()
  const undoneFirst = new Set<string>()
  let n = 0
  const reply = (outcome: Reply['outcome'], effectId?: string | null, repeated = false): Reply[] => [{ outcome, ...(effectId !== undefined ? { effectId } : {}), ...(repeated ? { repeated } : {}), raw: outcome }]
  return {
    via: 'kafka',
    target: 'memory',
    sends: ['charge_payment → memory'],
    async act(ids: Ids, _attempt, o = {}) {
      if (undoneFirst.has(ids.saga_id)) return o.abortAfterMs ? [] : reply('declined')
      const known = effects.get(ids.saga_id)
      if (known) return o.abortAfterMs ? [] : reply('done', known.id, true)
      const effect = { id: `e-${++n}`, undone: false }
      effects.set(ids.saga_id, effect)
      return o.abortAfterMs ? [] : reply('done', effect.id)
    },
    async undo(ids: Ids) {
      const known = effects.get(ids.saga_id)
      if (!known) {
        undoneFirst.add(ids.saga_id)
        return reply('confirmed', null)
      }
      const repeated = known.undone
      known.undone = true
      return reply('confirmed', known.id, repeated)
    },
    async malformed() {
      return { ok: true, seen: 'dead-lettered' }
    },
    async close() {},
  }
}

describe('conform: the rules, on participants kept in memory', () => {
  it('given a participant that keeps the contract, then every rule passes', async () => {
    const report = await conform(keeper(), payment)
    expect(report.rules.map((r) => [r.id, r.ok])).toEqual(RULES.map((r) => [r.id, true]))
    expect(report.ok).toBe(true)
  })

  it('given a participant that never answers, then every rule fails: none passes for want of evidence', async () => {
    const silent: Driver = { via: 'kafka', target: 'nowhere', sends: [], act: async () => [], undo: async () => [], malformed: async () => ({ ok: false, seen: 'no dead letter' }), close: async () => {} }
    const report = await conform(silent, payment)
    expect(report.rules.filter((r) => r.ok)).toEqual([])
    expect(report.ok).toBe(false)
  })

  it('given a participant that acts anew on every command, then the idempotency rules fail and say what was seen', async () => {
    let n = 0
    const careless: Driver = { ...keeper(), act: async (_ids, _a, o = {}) => (o.abortAfterMs ? [] : [{ outcome: 'done', effectId: `e-${++n}`, raw: 'done' }]) }
    const report = await conform(careless, payment)
    const failed = report.rules.filter((r) => !r.ok).map((r) => r.id)
    // Its undo knows nothing of those effects either, so both undos are fresh ones.
    expect(failed).toEqual(['same-command-twice', 'undo-twice', 'act-after-undo', 'retry-after-timeout'])
    expect(report.rules.find((r) => r.id === 'same-command-twice')!.seen).toBe('first: done e-1; again: done e-2')
  })

  it('given a reply that breaks the envelope, then the envelope rule fails with the problem', async () => {
    const sloppy: Driver = { ...keeper() }
    const base = keeper()
    sloppy.act = async (ids, attempt, o) => (await base.act(ids, attempt, o)).map((r) => ({ ...r, malformed: 'reply m-1: causation_id is not the command' }))
    const report = await conform(sloppy, payment)
    expect(report.rules.find((r) => r.id === 'envelope')).toMatchObject({ ok: false, seen: expect.stringContaining('causation_id is not the command') })
  })
})

/** An HTTP service with the routes it was given; anything else gets the 404 of a web framework's router. */
async function serve(routes: Record<string, (body: Record<string, unknown>) => { status: number; body: unknown }>): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = []
  const server = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => (raw += c.toString()))
    req.on('end', () => {
      paths.push(`${req.method} ${req.url}`)
      const route = routes[req.url ?? '']
      let body: Record<string, unknown> | undefined
      try {
        body = JSON.parse(raw) as Record<string, unknown>
      } catch {
        body = undefined
      }
      const answer = !route ? { status: 404, body: { detail: 'Not Found' } } : body ? route(body) : { status: 400, body: { detail: 'not JSON' } }
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths, close: () => new Promise<void>((r) => server.close(() => r())) }
}

describe('conform --url: where it posts, and what each failed rule got', () => {
  const closing: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const close of closing.splice(0)) await close()
  })
  const driver = (url: string, step = inventory) => httpDriver(url, step, { declined: [409, 422], timeoutMs: 5000 })

  it('given a service whose routes are not <url>/<command type> (/holds, /releases), when checked, then every rule fails, the envelope included, each naming the 404 and the path it posted to', async () => {
    let n = 0
    const service = await serve({ '/holds': () => ({ status: 200, body: { reservation_id: `r-${++n}` } }), '/releases': () => ({ status: 200, body: {} }) })
    closing.push(service.close)

    const report = await conform(driver(service.url), inventory)

    expect(report.ok).toBe(false)
    expect(report.rules.map((r) => [r.id, r.ok])).toEqual(RULES.map((r) => [r.id, false]))
    for (const rule of report.rules) {
      expect(rule.seen, rule.id).toContain('404')
      expect(rule.seen, rule.id).toContain('no such route')
      expect(rule.seen, rule.id).toMatch(new RegExp(`POST ${service.url}/(reserve_inventory|cancel_reservation)`))
    }
    expect(report.rules.find((r) => r.id === 'envelope')!.seen).toContain(`no such route: POST ${service.url}/reserve_inventory answered 404`)
    expect(service.paths.every((p) => p === 'POST /reserve_inventory' || p === 'POST /cancel_reservation')).toBe(true)
  })

  it('given any service, then the report says where each command is posted, and so does the text', async () => {
    const service = await serve({})
    closing.push(service.close)

    const report = await conform(driver(`${service.url}/api/`), inventory)

    expect(report.sends).toEqual([`reserve_inventory → POST ${service.url}/api/reserve_inventory`, `cancel_reservation → POST ${service.url}/api/cancel_reservation`])
    const text = renderConformReport(report)
    expect(text).toContain(`sends reserve_inventory → POST ${service.url}/api/reserve_inventory`)
    expect(text).toContain(`sends cancel_reservation → POST ${service.url}/api/cancel_reservation`)
  })

  it('given a service on the right paths that answers a status the rule cannot pass on, then the failed rule shows that status and the path', async () => {
    const service = await serve({
      '/charge_payment': () => ({ status: 200, body: { payment_id: 'p-1' } }),
      // Undo before act: refused, where the contract wants it confirmed.
      '/refund_payment': () => ({ status: 500, body: { detail: 'no such payment' } }),
    })
    closing.push(service.close)

    const report = await conform(driver(service.url, payment), payment)

    const undoFirst = report.rules.find((r) => r.id === 'undo-before-act')!
    expect(undoFirst.ok).toBe(false)
    expect(undoFirst.seen).toBe(`failed (500 from POST ${service.url}/refund_payment)`)
    expect(undoFirst.seen).not.toContain('no such route')
    expect(report.rules.find((r) => r.id === 'envelope')!.ok).toBe(true)
  })
})
