import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { freePort, startLocalKafka, type LocalKafka } from '../../src/broker/local-kafka.js'
import { parsePrometheusText, total } from '../../src/observe/prom-text.js'
import { ALL_ROLES, post, System, verifyClean, waitFor } from './harness.js'

/**
 * A single broker of the file's own, on fixed ports and a kept data directory, so that it can go
 * away and come back as the same cluster while the roles run.
 */
class Broker {
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-outage-'))
  #running: LocalKafka | undefined
  constructor(
    readonly port: number,
    readonly controllerPort: number,
  ) {}

  get brokers(): string {
    return `127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    this.#running = await startLocalKafka({ port: this.port, controllerPort: this.controllerPort, dataDir: this.dataDir, keepData: true, log: (line) => console.log(`[outage broker] ${line}`) })
  }

  async stop(): Promise<void> {
    await this.#running?.stop()
    this.#running = undefined
  }

  async remove(): Promise<void> {
    await this.stop()
    fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}

/** The roles that exited on their own (the harness restarts them), with their last lines. */
function exitsOf(system: System): string[] {
  return system.unexpectedExits.map((e) => `${e.role} exited ${e.code}: ${e.tail.join(' | ')}`)
}

async function health(system: System): Promise<{ code: number; body: { status: string; reason?: string } } | undefined> {
  const response = await fetch(`${system.url}/healthz`).catch(() => undefined)
  return response ? { code: response.status, body: (await response.json()) as { status: string; reason?: string } } : undefined
}

describe('a single broker that goes away: the roles wait for it, and exit only past SAGA_BROKER_LOST_AFTER', () => {
  let broker: Broker | undefined
  let system: System | undefined
  afterEach(async () => {
    await system?.stop()
    await broker?.remove()
    system = undefined
    broker = undefined
  })

  async function setUp(env: Record<string, string>, supervise: boolean): Promise<{ b: Broker; s: System }> {
    broker = new Broker(await freePort(), await freePort())
    system = new System({ LOG_LEVEL: 'info', ...env }, { brokers: broker.brokers, supervise })
    system.port = await freePort()
    return { b: broker, s: system }
  }

  it('roles started before the broker say that they wait for it, then work', async () => {
    const { b, s } = await setUp({}, true)
    const starting = Promise.all(ALL_ROLES.map((role) => s.startRole(role)))
    await waitFor(() => ALL_ROLES.every((role) => s.logs(role).some((l) => /^waiting for the Kafka broker at /.test(l.msg))), 'every role to say it waits for the broker', 60_000)
    await b.start()
    await starting
    const order = await post(s.port)
    const events = await s.waitForFinal(order)
    expect(events.at(-1)!.type).toBe('order.completed')
    expect(exitsOf(s)).toEqual([])
  }, 180_000)

  it('the broker down for 30 s under load: no role exits, /healthz says why meanwhile, every order ends once', async () => {
    const { b, s } = await setUp({ PAYMENT_SUCCESS_RATE: '0.8', SAGA_BROKER_LOST_AFTER: '3m' }, true)
    await b.start()
    await Promise.all(ALL_ROLES.map((role) => s.startRole(role)))

    const ids: string[] = []
    for (let i = 0; i < 20; i++) ids.push(await post(s.port))
    await s.waitForFinals(ids)

    await b.stop()
    const downAt = Date.now()
    // The api keeps accepting orders into its file while the broker is away.
    for (let i = 0; i < 10; i++) ids.push(await post(s.port))
    const degraded = await waitFor(async () => {
      const h = await health(s)
      return h?.code === 503 ? h : undefined
    }, '/healthz to say the api is degraded')
    expect(degraded.body.status).toBe('degraded')
    expect(degraded.body.reason).toMatch(/Kafka broker|without the broker/)
    // Thirty seconds away: longer than a session (10 s), so every group forgets its members.
    await waitFor(() => Date.now() - downAt >= 30_000, 'the outage to last 30 s', 40_000, 500)
    expect(exitsOf(s)).toEqual([])
    await b.start()

    for (let i = 0; i < 10; i++) ids.push(await post(s.port))
    await s.waitForFinals(ids, 120_000)
    await verifyClean(s, ids.length)
    expect(exitsOf(s)).toEqual([])
    expect((await health(s))?.code).toBe(200)
    // Every role that lost its consumer says so and joined again; the api counts it.
    const metrics = parsePrometheusText(await (await fetch(`${s.url}/metrics`)).text())
    expect(total(metrics, 'sagactl_broker_reconnects_total')).toBeGreaterThanOrEqual(1)
    expect(total(metrics, 'sagactl_broker_disconnected_seconds_total')).toBeGreaterThan(0)
    expect(total(metrics, 'sagactl_broker_request_retries_total')).toBeGreaterThan(0)
    const how = ALL_ROLES.map((role) => {
      const msgs = s.logs(role).map((l) => l.msg)
      return `${role}: ${msgs.includes('consuming again') ? 'joined again' : msgs.includes('the consumer has the broker again; consuming on, no partition moved') ? 'in place' : 'unaffected'}`
    })
    console.log(`after 30 s without the broker: ${how.join(', ')}`)
  }, 300_000)

  it('the broker gone past SAGA_BROKER_LOST_AFTER: every role exits 1 with the sentence', async () => {
    const { b, s } = await setUp({ SAGA_BROKER_LOST_AFTER: '8s' }, false)
    await b.start()
    await Promise.all(ALL_ROLES.map((role) => s.startRole(role)))
    const id = await post(s.port)
    await s.waitForFinal(id)
    await b.stop()
    const codes = await Promise.all(ALL_ROLES.map((role) => Promise.race([s.exited(role), new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 90_000))])))
    expect(codes).toEqual(ALL_ROLES.map(() => 1))
    for (const role of ALL_ROLES) expect(s.logs(role).map((l) => `${l.msg} ${JSON.stringify(l.err ?? '')}`).join('\n'), role).toMatch(/longer than SAGA_BROKER_LOST_AFTER \(8 s\)/)
  }, 180_000)
})
