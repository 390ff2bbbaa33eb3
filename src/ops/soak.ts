import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { freePort, startLocalKafka, type LocalKafka } from '../broker/local-kafka.js'
import { event } from '../envelope.js'
import { openBus } from '../kafka/open-bus.js'
import type { Saga } from '../saga/define.js'
import { roleNames } from '../saga/derive.js'
import { topicNames, topicSpecs } from '../topics.js'
import { keyedIds } from '../services/api/idempotency.js'
import { groupInputs } from '../services/start-role.js'
import { waitForQuiet } from './quiet.js'
import { readSagaMessages, sagaTopics } from '../services/orchestrator/saga-log.js'
import { Supervisor, unitsFor, waitForHealthy } from './supervisor.js'
import { listDeadLetters } from './dead-letters.js'
import { countFallback, countKill, emptyCounts, fallbackCause, total, type ApiAttempt, type FallbackCause } from './soak-counts.js'
import { deadLetteredIds, verifyMessages, type VerifyReport } from './verify.js'

export interface SoakOptions {
  saga: Saga
  orders: number
  rate: number
  killEveryMs: number
  duplicateEveryMs: number
  poison: number
  restartBroker: boolean
  quietTimeoutMs: number
  /** Instances of each role (their partitions and state move between them as they are killed). */
  instances?: number
  /** Keep the broker's and the roles' data for a post-mortem. */
  keep?: boolean
  /** Write each role process's output to <dir>/<role[@instance]>.log. */
  logDir?: string
  log: (line: string) => void
}

export interface SoakReport {
  ok: boolean
  machine: { cpus: number; memory_gib: number; node: string }
  duration_s: number
  instances: number
  orders_submitted: number
  via_api: number
  via_kafka: number
  /** Why each of the via_kafka orders did not go through the api: `api_down` (connection refused), `connection_lost`, `timeout`, `http_<status>`, `error`. */
  via_kafka_by_cause: Partial<Record<FallbackCause, number>>
  /** SIGKILLs whose exit was seen, by unit. */
  kills: Record<string, number>
  /** Kills not sent because the unit was already down, by unit. */
  kills_skipped: Record<string, number>
  unexpected_exits: Record<string, number>
  broker_restarts: number
  duplicates_injected: number
  poison_injected: number
  dead_letters: number
  missing_orders: number
  /** The first few submitted orders that never reached order.events, and how each was submitted. */
  missing: { order_id: string; via: 'api' | 'kafka' }[]
  verify: VerifyReport
}

const RETRY_MIN_MS = 200
const RETRY_MAX_MS = 500
const STEP_TIMEOUT_MS = 4000
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!

const POISON: ((key: string) => string)[] = [
  (key) => `{"event_type":"order.created","order_id":"${key}"`,
  (key) => JSON.stringify({ event_type: 'order.created', order_id: key, saga_id: key, payload: {} }),
  (key) => JSON.stringify(event('order.teleported', { order_id: key, saga_id: key, payload: {} }, Date.now())),
  (key) => JSON.stringify(event('order.created', { order_id: key, saga_id: key, payload: { items: 'lots', amount: -5 } }, Date.now())),
  (key) => JSON.stringify(event('order.created', { order_id: key, saga_id: key, payload: { items: [], amount: 1, pad: 'x'.repeat(300_000) } }, Date.now())),
]

/**
 * Drives orders through the whole system on its own broker while killing roles, restarting the
 * broker, and injecting duplicates and poison; then waits for quiet and verifies the invariants.
 */
export async function soak(o: SoakOptions): Promise<SoakReport> {
  const started = Date.now()
  const brokerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-soak-kafka-'))
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-soak-data-'))
  const ports = { port: await freePort(), controllerPort: await freePort() }
  let broker: LocalKafka = await startLocalKafka({ ...ports, dataDir: brokerDir, keepData: true, log: o.log })
  const prefix = `soak-${randomUUID().slice(0, 8)}.`
  const topics = topicNames(prefix, o.saga)
  const instances = o.instances ?? 1
  const apiPorts: number[] = []
  for (let i = 0; i < instances; i++) apiPorts.push(await freePort())
  const bus = openBus({ brokers: [broker.brokers], kafka: {} }, 'sagactl-soak')
  await bus.ensureTopics(topicSpecs(prefix, o.saga))

  if (o.logDir) fs.mkdirSync(o.logDir, { recursive: true })
  const counts = emptyCounts()
  const unexpected: Record<string, number> = {}
  const supervisor = new Supervisor({
    env: {
      ...process.env,
      KAFKA_BROKERS: broker.brokers,
      SAGA_DATA_DIR: dataDir,
      SAGA_TOPIC_PREFIX: prefix,
      SAGA_RETRY_MIN_DELAY_MS: String(RETRY_MIN_MS),
      SAGA_RETRY_MAX_DELAY_MS: String(RETRY_MAX_MS),
      SAGA_STEP_TIMEOUT_MS: String(STEP_TIMEOUT_MS),
      SAGA_LOG_PRETTY: '0',
      LOG_LEVEL: o.logDir ? 'info' : 'warn',
    },
    restartAfterMs: 500,
    ...(o.logDir ? { onLine: (unit: string, line: string) => fs.appendFileSync(path.join(o.logDir!, `${unit}.log`), `${line}\n`) } : {}),
    onExit: (role, code, signal, expected) => {
      if (!expected) {
        unexpected[role] = (unexpected[role] ?? 0) + 1
        o.log(`${role} exited on its own (${signal ?? code}); restarting`)
      }
    },
  })
  for (const unit of unitsFor(roleNames(o.saga), instances, (i) => apiPorts[i]!)) supervisor.start(unit)
  for (const port of apiPorts) if (!(await waitForHealthy(`http://127.0.0.1:${port}`, 90_000))) throw new Error('the roles did not come up within 90 s')

  const report = { via_api: 0, via_kafka: 0, broker_restarts: 0, duplicates_injected: 0, poison_injected: 0 }
  const submitted: { order_id: string; via: 'api' | 'kafka' }[] = []
  let brokerDown = false
  const timers: NodeJS.Timeout[] = []
  try {
    const killer = setInterval(() => {
      if (brokerDown) return
      const unit = pick(supervisor.names())
      void supervisor.kill(unit, 'SIGKILL').then(async (died) => {
        countKill(counts, unit, died)
        // A unit that was already down is being restarted by whoever brought it down.
        if (!died) return
        await sleep(300 + Math.random() * 700)
        supervisor.start(unit)
      })
    }, o.killEveryMs)
    timers.push(killer)
    const duplicator = setInterval(() => {
      if (!brokerDown) void injectDuplicate().catch(() => undefined)
    }, o.duplicateEveryMs)
    timers.push(duplicator)

    async function injectDuplicate(): Promise<void> {
      const topic = pick(sagaTopics(topics, o.saga))
      const ends = await bus.endOffsets(topic)
      const partition = Math.floor(Math.random() * ends.length)
      const end = ends[partition] ?? 0n
      if (end === 0n) return
      const recent: { key: string; value: Buffer }[] = []
      await bus.read({ topic, partitions: [partition], fromOffset: end > 10n ? end - 10n : 0n, handler: (r) => void (r.value && recent.push({ key: r.key?.toString() ?? '', value: r.value })) })
      if (recent.length === 0) return
      const r = pick(recent)
      await bus.publish([{ topic, key: r.key, value: r.value }])
      report.duplicates_injected++
    }

    const poisonAt = new Set(Array.from({ length: o.poison }, (_, i) => Math.floor(((i + 1) * o.orders) / (o.poison + 1))))
    const gap = 1000 / o.rate
    const driving = Date.now()
    for (let i = 0; i < o.orders; i++) {
      const due = driving + i * gap
      if (due > Date.now()) await sleep(due - Date.now())
      if (o.restartBroker && i === Math.floor(o.orders / 2)) {
        o.log(`restarting the broker at order ${i}`)
        brokerDown = true
        await broker.stop()
        broker = await startLocalKafka({ ...ports, dataDir: brokerDir, keepData: true, log: o.log })
        brokerDown = false
        report.broker_restarts++
      }
      if (poisonAt.has(i)) {
        const key = randomUUID()
        await retry(() => bus.publish([{ topic: pick([topics.orderEvents, topics.orderEvents, topics.paymentCommands]), key, value: pick(POISON)(key) }]))
        report.poison_injected++
      }
      submitted.push(await submit(i))
      if ((i + 1) % 250 === 0) o.log(`${i + 1}/${o.orders} orders submitted`)
    }

    async function submit(i: number): Promise<{ order_id: string; via: 'api' | 'kafka' }> {
      const body = { user_id: `soak-${i}`, items: [{ sku: `sku-${i % 17}`, qty: 1 + (i % 3) }], amount: 100 + i }
      // The same key on the HTTP attempt and on the fallback: an api that committed the order but
      // died before answering and the fallback then make one order, not two.
      const key = `${prefix}${i}`
      let attempt: ApiAttempt
      try {
        const response = await fetch(`http://127.0.0.1:${apiPorts[i % apiPorts.length]}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(body), signal: AbortSignal.timeout(2000) })
        if (response.status === 202) {
          const placed = (await response.json()) as { order_id: string }
          report.via_api++
          return { order_id: placed.order_id, via: 'api' }
        }
        attempt = { status: response.status }
      } catch (error) {
        // The api is being killed now and then: place this one straight on Kafka.
        attempt = { error }
      }
      countFallback(counts, fallbackCause(attempt) ?? 'error')
      const ids = keyedIds(body.user_id, key)
      const created = event('order.created', { order_id: ids.orderId, saga_id: ids.sagaId, payload: body }, Date.now(), ids.messageId)
      await retry(() => bus.publish([{ topic: topics.orderEvents, key: ids.orderId, value: JSON.stringify(created) }]))
      report.via_kafka++
      return { order_id: ids.orderId, via: 'kafka' }
    }

    for (const t of timers) clearInterval(t)
    await sleep(2000)
    for (const unit of supervisor.names()) if (!supervisor.running(unit)) supervisor.start(unit)
    o.log('all orders submitted; waiting for the system to go quiet')
    const quiet = await waitForQuiet(bus, sagaTopics(topics, o.saga), o.quietTimeoutMs, STEP_TIMEOUT_MS + RETRY_MAX_MS + 3000, groupInputs(prefix, o.saga))
    if (!quiet) o.log('the system did not go quiet before the deadline; verifying anyway')

    const messages = await readSagaMessages(bus, topics, o.saga)
    const letters = await listDeadLetters(bus, topics)
    const verify = verifyMessages(messages, deadLetteredIds(letters), { saga: o.saga })
    const created = new Set(messages.filter((m) => m.type === 'order.created').map((m) => m.order_id))
    const missing = submitted.filter((o) => !created.has(o.order_id))
    const deadLetters = letters.length
    return {
      ok: verify.ok && missing.length === 0,
      machine: { cpus: os.cpus().length, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      duration_s: Math.round((Date.now() - started) / 1000),
      instances,
      orders_submitted: submitted.length,
      ...report,
      via_kafka_by_cause: counts.via_kafka_by_cause,
      kills: counts.kills,
      kills_skipped: counts.kills_skipped,
      unexpected_exits: unexpected,
      dead_letters: deadLetters,
      missing_orders: missing.length,
      missing: missing.slice(0, 20),
      verify,
    }
  } finally {
    for (const t of timers) clearInterval(t)
    await supervisor.stopAll()
    await bus.close()
    await broker.stop()
    if (o.keep) o.log(`kept the broker's data in ${brokerDir} and the roles' databases in ${dataDir}`)
    else {
      fs.rmSync(brokerDir, { recursive: true, force: true })
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

async function retry(work: () => Promise<void>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await work()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(500)
    }
  }
}

export function renderSoakReport(r: SoakReport): string {
  const list = (record: Partial<Record<string, number>>) => Object.entries(record).map(([k, v]) => `${k} ${v}`).join(', ')
  return [
    `soak ${r.ok ? 'PASSED' : 'FAILED'} in ${r.duration_s} s with ${r.instances} instance(s) of each role, on ${r.machine.cpus} cores / ${r.machine.memory_gib} GiB, Node ${r.machine.node}`,
    `orders submitted: ${r.orders_submitted} (${r.via_api} via the api, ${r.via_kafka} straight to Kafka${r.via_kafka > 0 ? `: ${list(r.via_kafka_by_cause)}` : ''}); missing: ${r.missing_orders}`,
    `SIGKILLs seen to exit: ${total(r.kills)} (${list(r.kills)}); not sent, the role already down: ${total(r.kills_skipped)}; roles that died on their own: ${JSON.stringify(r.unexpected_exits)}; broker restarts: ${r.broker_restarts}`,
    `duplicates injected: ${r.duplicates_injected}; poison injected: ${r.poison_injected}; dead letters: ${r.dead_letters}`,
    ...r.missing.map((m) => `  ✗ submitted via ${m.via} but never on order.events: ${m.order_id}`),
    `verify: ${r.verify.ok ? 'OK' : 'BREACHED'} — ${r.verify.orders} orders, ${r.verify.completed} completed, ${r.verify.cancelled} cancelled, ${r.verify.unfinished} unfinished, ${r.verify.breaches.length} breaches; ${r.verify.duplicate_records} duplicate records skipped`,
    ...r.verify.breaches.slice(0, 20).map((b) => `  ✗ ${b.order_id} ${b.kind} (${b.rule}): ${b.detail}`),
  ].join('\n')
}
