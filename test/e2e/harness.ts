import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { expect, inject } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { loadConfig } from '../../src/config.js'
import { parseEnvelope, type Message } from '../../src/envelope.js'
import { openBus } from '../../src/kafka/open-bus.js'
import type { ConsumedRecord, MessageBus } from '../../src/kafka/port.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import type { RoleName } from '../../src/saga/define.js'
import { topicNames, type TopicKey } from '../../src/topics.js'
import { orderSaga } from '../../src/order-saga/saga.js'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
export const ALL_ROLES: RoleName[] = ['api', 'orchestrator', 'inventory', 'payment', 'notifier']

export interface LogLine {
  level: number
  msg: string
  [field: string]: unknown
}

interface RoleProcess {
  child: ChildProcess
  lines: LogLine[]
  raw: string[]
  exited: Promise<number | null>
  /** Killed or stopped by the test, not a crash. */
  expected?: boolean
}

export interface SystemOptions {
  /** A broker or cluster of the test file's own instead of the shared one (comma-separated). */
  brokers?: string
  /** Start a role again when it exits on its own, as a production supervisor would. */
  supervise?: boolean
  /** A built saga module: every role and CLI command is given `--saga <it>`. */
  saga?: string
}

export interface RoleExit {
  role: RoleName
  code: number | null
  /** The dead process's last log lines: why it exited. */
  tail: string[]
}

/** Polls `probe` until it returns something truthy; fails with `what` at the deadline. */
export async function waitFor<T>(probe: () => Promise<T | undefined | false | null> | T | undefined | false | null, what: string, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

export interface TopicMessage {
  record: ConsumedRecord
  message?: Message
}

/** Real roles as separate processes on the shared test broker, isolated by a topic prefix. */
export class System {
  readonly prefix = `t${randomUUID().slice(0, 8)}.`
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-e2e-'))
  readonly brokers: string
  readonly topics = topicNames(this.prefix, orderSaga)
  /** The test's own reader and writer, with the same TLS/SASL settings the roles get from `env`. */
  readonly bus: MessageBus
  /** Keyed by role, or role@instance for a named instance. */
  readonly roles = new Map<string, RoleProcess>()
  /** Roles that exited on their own while supervised, oldest first. */
  readonly unexpectedExits: RoleExit[] = []
  readonly #supervise: boolean
  readonly #saga: string[]
  #stopping = false
  port = 0
  env: Record<string, string>

  constructor(env: Record<string, string> = {}, options: SystemOptions = {}) {
    this.env = {
      SAGA_RETRY_MIN_DELAY_MS: '300',
      SAGA_RETRY_MAX_DELAY_MS: '600',
      INVENTORY_SUCCESS_RATE: '1',
      PAYMENT_SUCCESS_RATE: '1',
      SAGA_ALLOW_CHAOS: 'true',
      ...env,
    }
    this.brokers = options.brokers ?? inject('brokers')
    this.#supervise = options.supervise ?? false
    this.#saga = options.saga ? ['--saga', options.saga] : []
    this.bus = openBus({ brokers: this.brokers.split(','), kafka: loadConfig(this.env).kafka }, 'sagactl-test')
  }

  static async start(roles: RoleName[] = ALL_ROLES, env: Record<string, string> = {}, options: SystemOptions = {}): Promise<System> {
    const system = new System(env, options)
    system.port = await freePort()
    await Promise.all(roles.map((r) => system.startRole(r)))
    return system
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  processEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.env, KAFKA_BROKERS: this.brokers, SAGA_DATA_DIR: this.dataDir, SAGA_TOPIC_PREFIX: this.prefix, PORT: String(this.port), SAGA_LOG_PRETTY: '0', LOG_LEVEL: 'debug' }
  }

  /**
   * Starts a role; with `instance`, a named instance of it (its own data directory), keyed
   * role@instance. `as` is the role it runs when `role` is not one (`participant --step …`).
   */
  async startRole(role: RoleName | 'participant', env: Record<string, string> = {}, instance?: string, saga: string[] = this.#saga, as: RoleName = role as RoleName): Promise<string> {
    const name = instance ? `${as}@${instance}` : as
    const child = spawn(process.execPath, [BIN, 'start', role, ...saga], { env: { ...this.processEnv(), ...env, ...(instance ? { SAGA_INSTANCE_ID: instance } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] })
    const rp: RoleProcess = { child, lines: [], raw: [], exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) }
    this.roles.set(name, rp)
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        rp.raw.push(line)
        try {
          rp.lines.push(JSON.parse(line) as LogLine)
        } catch {
          // stderr noise (warnings) stays in raw
        }
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    let exitedEarly = false
    void rp.exited.then((code) => {
      exitedEarly = true
      if (!this.#supervise || this.#stopping || rp.expected) return
      this.unexpectedExits.push({ role: as, code, tail: rp.raw.slice(-5) })
      // A failed restart exits again and lands back here: the loop ends when the role stays up.
      setTimeout(() => {
        if (!this.#stopping) this.startRole(role, env, instance, saga, as).catch(() => undefined)
      }, 500)
    })
    await waitFor(
      () => {
        // Started, then died (a crash point on a record it read at once): started all the same.
        if (rp.lines.some((l) => l.msg === `${as} started`)) return true
        if (exitedEarly) throw new Error(`${role} exited during start:\n${rp.raw.join('\n')}`)
        return false
      },
      `${role} to start`,
      60_000,
      100,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${rp.raw.slice(-30).join('\n')}`)
    })
    return name
  }

  logs(role: string): LogLine[] {
    return this.roles.get(role)?.lines ?? []
  }

  /** Resolves with the role's exit code (null when a signal ended it), once it has exited. */
  exited(role: string): Promise<number | null> {
    return this.roles.get(role)?.exited ?? Promise.resolve(null)
  }

  async kill(role: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const rp = this.roles.get(role)
    if (!rp) return null
    rp.expected = true
    rp.child.kill(signal)
    return rp.exited
  }

  async cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [BIN, ...args, ...this.#saga], { env: { ...this.processEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    return { code, stdout, stderr }
  }

  async postOrder(body: unknown = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }): Promise<{ order_id: string; saga_id: string }> {
    const response = await fetch(`${this.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}: ${await response.text()}`)
    return (await response.json()) as { order_id: string; saga_id: string }
  }

  /** POSTs to the api, with a JSON body only when one is given: its status and its answer. */
  async postJson(route: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.url}${route}`, {
      method: 'POST',
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  async read(topic: TopicKey): Promise<TopicMessage[]> {
    const out: TopicMessage[] = []
    await this.bus.read({
      topic: this.topics[topic],
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        out.push({ record, ...(parsed.ok ? { message: parsed.message } : {}) })
      },
    })
    return out
  }

  /** The messages of one order on a topic, in offset order (one order lives in one partition). */
  async messagesOf(topic: TopicKey, orderId: string): Promise<Message[]> {
    const all = await this.read(topic)
    return all
      .filter((m) => m.message?.order_id === orderId)
      .sort((a, b) => (a.record.offset < b.record.offset ? -1 : 1))
      .map((m) => m.message!)
  }

  async typesOf(topic: TopicKey, orderId: string): Promise<string[]> {
    return (await this.messagesOf(topic, orderId)).map((m) => m.type)
  }

  async waitForFinal(orderId: string, timeoutMs = 60_000): Promise<Message[]> {
    return waitFor(
      async () => {
        const events = await this.messagesOf('orderEvents', orderId)
        return events.some((e) => e.type === 'order.completed' || e.type === 'order.cancelled') ? events : undefined
      },
      `a final event for order ${orderId}`,
      timeoutMs,
      250,
    )
  }

  /** Waits until every order has its final event, reading the topic once per poll. */
  async waitForFinals(orderIds: string[], timeoutMs = 60_000): Promise<Map<string, string>> {
    return waitFor(
      async () => {
        const finals = new Map<string, string>()
        for (const m of await this.read('orderEvents')) {
          if (m.message && (m.message.type === 'order.completed' || m.message.type === 'order.cancelled')) finals.set(m.message.order_id, m.message.type)
        }
        return orderIds.every((id) => finals.has(id)) ? finals : undefined
      },
      `final events for ${orderIds.length} orders`,
      timeoutMs,
      250,
    )
  }

  async chaos(role: 'inventory' | 'payment', ...flags: string[]): Promise<void> {
    const result = await this.cli(['chaos', role, ...flags, '--json'])
    if (result.code !== 0) throw new Error(`chaos ${role} ${flags.join(' ')} failed: ${result.stderr}${result.stdout}`)
  }

  async stop(): Promise<void> {
    this.#stopping = true
    // SAGA_TEST_LOG_DIR keeps every role's log for a post-mortem.
    const keep = process.env.SAGA_TEST_LOG_DIR
    if (keep) {
      fs.mkdirSync(keep, { recursive: true })
      for (const [name, rp] of this.roles) fs.writeFileSync(path.join(keep, `${this.prefix}${name}.log`), rp.raw.join('\n'))
    }
    await Promise.all(
      [...this.roles.values()].map(async (rp) => {
        if (rp.child.exitCode === null && rp.child.signalCode === null) rp.child.kill('SIGTERM')
        const timer = setTimeout(() => rp.child.kill('SIGKILL'), 15_000)
        await rp.exited
        clearTimeout(timer)
      }),
    )
    await this.bus.close()
    fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}

export const BODY = { user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999 }

export async function post(port: number, body: unknown = BODY): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (response.status !== 202) throw new Error(`POST /orders on ${port} answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { order_id: string }).order_id
}

export async function verifyClean(system: System, orders: number): Promise<VerifyReport> {
  const result = await system.cli(['verify', '--json'])
  const report = JSON.parse(result.stdout) as VerifyReport
  expect(report.breaches).toEqual([])
  expect(report).toMatchObject({ ok: true, orders, unfinished: 0 })
  expect(report.completed + report.cancelled).toBe(orders)
  expect(result.code).toBe(0)
  return report
}

/** Partitions a named instance owns now, from its own log of assignments and revocations. */
export function owned(system: System, name: string): Set<number> {
  const mine = new Set<number>()
  for (const line of system.logs(name)) {
    if (line.msg.startsWith('partition assigned')) mine.add(line.partition as number)
    if (line.msg.startsWith('partitions revoked')) for (const p of line.partitions as number[]) mine.delete(p)
    if (line.msg.startsWith('partition fenced')) mine.delete(line.partition as number)
  }
  return mine
}
