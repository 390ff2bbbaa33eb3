import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { RULES, type ConformReport } from '../../src/ops/conform.js'
import { FastApiService, setUpFastApiExample } from './fastapi-services.js'
import { System } from './harness.js'

type RuleId = (typeof RULES)[number]['id']

/**
 * A payment service written here, that keeps every rule but the one it is told to break: what
 * `conform` reports about it shows that each rule can fail, and is named when it does.
 */
function breakable(broken: RuleId | undefined): Promise<{ url: string; close(): Promise<void> }> {
  const answers = new Map<string, { status: number; body: unknown }>()
  const charged = new Set<string>()
  const undoneFirst = new Set<string>()
  let counter = 0
  const server = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => (raw += c.toString()))
    req.on('end', () => {
      const send = (status: number, body: unknown): void => {
        const text = broken === 'envelope' && status < 300 ? 'ok' : JSON.stringify(body)
        res.writeHead(status, { 'content-type': 'application/json' }).end(text)
      }
      let body: { order_id: string; attempt: number }
      try {
        body = JSON.parse(raw) as { order_id: string; attempt: number }
      } catch {
        return send(broken === 'malformed-command' ? 500 : 400, { detail: 'not JSON' })
      }
      const act = req.url === '/charge_payment'
      // Broken retries: each attempt is a new charge. Broken idempotency: the first attempt is charged every time it comes.
      const key = String(req.headers['idempotency-key']) + (broken === 'retry-after-timeout' && act ? `#${body.attempt}` : '')
      const forgets = (broken === 'same-command-twice' && act && body.attempt === 1) || (broken === 'undo-twice' && !act)
      const earlier = answers.get(key)
      if (earlier && !forgets) return send(earlier.status, earlier.body)
      let answer: { status: number; body: unknown }
      if (act) {
        if (undoneFirst.has(body.order_id) && broken !== 'act-after-undo') answer = { status: 409, body: { detail: 'refunded before it was charged' } }
        else {
          charged.add(body.order_id)
          answer = { status: 200, body: { payment_id: `pay-${++counter}` } }
        }
      } else if (!charged.has(body.order_id)) {
        undoneFirst.add(body.order_id)
        // Refused where the contract wants it confirmed; not a 404, which conform reads as no such route.
        answer = broken === 'undo-before-act' ? { status: 422, body: { detail: 'no such payment' } } : { status: 200, body: { payment_id: null } }
      } else {
        answer = { status: 200, body: { refunded: true, n: ++counter } }
      }
      answers.set(key, answer)
      send(answer.status, answer.body)
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) }))
  })
}

describe('sagactl conform: a participant checked against the contract, rule by rule', () => {
  let system: System
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-conform-'))
  let payment: FastApiService | undefined
  let inventory: FastApiService | undefined

  beforeAll(async () => {
    // Only the participants run: conform plays the orchestrator, on this system's throwaway prefix.
    system = await System.start(['inventory', 'payment'])
    await setUpFastApiExample()
    inventory = await FastApiService.launch('inventory', path.join(dir, 'inventory.db'))
    payment = await FastApiService.launch('payment', path.join(dir, 'payment.db'))
  }, 400_000)
  afterAll(async () => {
    await system?.stop()
    await payment?.kill()
    await inventory?.kill()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const run = async (args: string[]): Promise<{ code: number | null; report: ConformReport; stdout: string }> => {
    const result = await system.cli(['conform', ...args, '--json'])
    return { code: result.code, report: JSON.parse(result.stdout) as ConformReport, stdout: result.stdout }
  }

  it.each(['payment', 'inventory'])('the built-in %s participant passes every rule over Kafka', async (role) => {
    const { code, report } = await run([role, '--topic', '--prefix', system.prefix])
    expect(report.rules.filter((r) => !r.ok)).toEqual([])
    expect(report.rules.map((r) => r.id)).toEqual(RULES.map((r) => r.id))
    expect(report).toMatchObject({ ok: true, via: 'kafka' })
    expect(code).toBe(0)
  })

  it('the FastAPI example’s services pass every rule over HTTP', async () => {
    for (const [step, service] of [['charge_payment', payment!], ['reserve_inventory', inventory!]] as const) {
      const { code, report } = await run([step, '--url', service.url])
      expect(report.rules.filter((r) => !r.ok)).toEqual([])
      expect(code).toBe(0)
    }
  })

  it.each(RULES.map((r) => r.id))('a service that breaks "%s" fails that rule, and only that one, with what was seen', async (rule) => {
    const service = await breakable(rule)
    try {
      const { code, report } = await run(['charge_payment', '--url', service.url])
      expect(report.rules.filter((r) => !r.ok).map((r) => r.id)).toEqual([rule])
      expect(report.rules.find((r) => r.id === rule)!.seen).not.toBe('')
      expect(code).toBe(1)
    } finally {
      await service.close()
    }
  })

  it('a service whose routes are not <url>/<command type> (a warehouse with /holds and /releases) fails every rule, the envelope too, and the report names the 404 and the paths conform posted to', async () => {
    const service = http.createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        const known = req.url === '/holds' || req.url === '/releases'
        res.writeHead(known ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(known ? { reservation_id: 'r-1' } : { detail: 'Not Found' }))
      })
    })
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(service.address() as AddressInfo).port}`
    try {
      const { code, report } = await run(['reserve_inventory', '--url', url])
      expect(code).toBe(1)
      expect(report.sends).toEqual([`reserve_inventory → POST ${url}/reserve_inventory`, `cancel_reservation → POST ${url}/cancel_reservation`])
      expect(report.rules.map((r) => r.id)).toEqual(RULES.map((r) => r.id))
      for (const rule of report.rules) {
        expect(rule.ok, rule.id).toBe(false)
        expect(rule.seen, rule.id).toMatch(new RegExp(`no such route: POST ${url}/(reserve_inventory|cancel_reservation) answered 404`))
      }
      const text = await system.cli(['conform', 'reserve_inventory', '--url', url])
      expect(text.code).toBe(1)
      expect(text.stdout).toContain(`sends reserve_inventory → POST ${url}/reserve_inventory`)
      expect(text.stdout).toContain('a 404 is no such route: conform posts each command to <url>/<command type>')
      expect(text.stdout).not.toContain('✓')
      const help = await system.cli(['conform', '--help'])
      expect(help.stdout.replace(/\s+/g, ' ')).toContain('each command is POSTed to <url>/<command type>')
    } finally {
      await new Promise<void>((r) => service.close(() => r()))
    }
  })

  it('refuses --topic without a throwaway prefix, and an unknown step', async () => {
    // oclif wraps an error's lines to the terminal's width.
    const flat = (text: string): string => text.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')
    const noPrefix = await system.cli(['conform', 'payment', '--topic'])
    expect(noPrefix.code).toBe(2)
    expect(flat(noPrefix.stderr)).toContain('--topic needs --prefix')
    const unknown = await system.cli(['conform', 'shipping', '--url', 'http://127.0.0.1:1'])
    expect(unknown.code).toBe(2)
    expect(flat(unknown.stderr)).toContain('no step "shipping"')
    expect(flat(unknown.stderr)).toContain("those are the default saga's (the order saga's) steps: if it is a step of your saga, pass --saga <module>")
    // The bridge's own start line refuses what it cannot run, before it touches the broker.
    const noStep = await system.cli(['start', 'participant', '--url', 'http://127.0.0.1:1'])
    expect(noStep.code).toBe(2)
    expect(flat(noStep.stderr)).toContain('`start participant` needs --step, one of: reserve_inventory, charge_payment')
    const otherStep = await system.cli(['start', 'participant', '--step', 'ship_order', '--url', 'http://127.0.0.1:1'])
    expect(otherStep.code).toBe(2)
    expect(flat(otherStep.stderr)).toContain('(got "ship_order"); those are the default saga\'s (the order saga\'s) steps: if it is a step of your saga, pass --saga <module>')
    const notParticipant = await system.cli(['start', 'orchestrator', '--url', 'http://127.0.0.1:1'])
    expect(notParticipant.code).toBe(2)
    expect(flat(notParticipant.stderr)).toContain('--url bridges a participant; orchestrator is not one')
  })
})
