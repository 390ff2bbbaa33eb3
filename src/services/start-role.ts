import path from 'node:path'

import type { Logger } from 'pino'

import { databasePath, openDatabase, type Db } from '../db/database.js'
import { openBus } from '../kafka/open-bus.js'
import type { MessageBus } from '../kafka/port.js'
import type { RoleHandler } from '../runtime/role.js'
import { keysOf, Pruner } from '../runtime/pruner.js'
import { pruneIntervalMs, retentionWarnings, sentOutboxKeepMs } from '../runtime/retention.js'
import { Runtime, type CrashPlan } from '../runtime/runtime.js'
import { waitForBroker } from '../runtime/broker-wait.js'
import { syncFor, type Config, type HttpBridgeConfig } from '../config.js'
import { waitsOf, type RoleName, type Saga } from '../saga/define.js'
import { definitionHash, eventTypes, stepOfRole, versionsOf } from '../saga/derive.js'
import { policyFor } from '../saga/decide.js'
import { RoleMetrics } from '../observe/metrics.js'
import { serveMetrics } from '../observe/metrics-server.js'
import { roleObserver } from '../observe/role-observer.js'
import { loadTracing } from '../observe/tracing-switch.js'
import { changelogInputs, changelogTopic, topicNames, topicSpecs, type ChangelogRole } from '../topics.js'
import { buildApp } from './api/app.js'
import { apiRole, ORDER_SCOPE, type OrderView } from './api/orders.js'
import { startLoopStats } from '../observe/loop-stats.js'
import { notifierFor } from './notifier.js'
import { orchestratorRole } from './orchestrator/role.js'
import { httpParticipant, type HttpParticipantOptions } from './http-bridge.js'
import { participantRole, participantSpec } from './participant.js'

/** A participant's success rate is named by its step module (INVENTORY_SUCCESS_RATE …) and checked like every variable. */
export function roleHandler(name: RoleName, config: Config, saga: Saga, log?: Logger, observe?: HttpParticipantOptions['observe']): RoleHandler {
  switch (name) {
    case 'api':
      return apiRole(config.orderLimits, { retentionMs: config.retentionMs, idempotencyTtlMs: config.idempotencyTtlMs }, eventTypes(saga))
    case 'orchestrator':
      return orchestratorRole(saga, { ...config.retry, stepTimeoutMs: config.stepTimeoutMs }, config.orderLimits, config.retentionMs)
    case 'notifier':
      return notifierFor(saga)
  }
  const own = stepOfRole(saga, name)
  if (!own) throw new Error(`the saga has no participant "${name}"`)
  // An existing HTTP service stands in for the step's code (or the stub): SAGA_HTTP_URL_<ROLE>, else SAGA_HTTP_URL.
  const url = bridgeUrl(config.http, name) ?? config.http.url
  const { stepTimeoutMs } = policyFor(own, { ...config.retry, stepTimeoutMs: config.stepTimeoutMs })
  const step = url ? { ...own, ...httpParticipant(url, { timeoutMs: stepTimeoutMs, ...(config.http.token ? { token: config.http.token } : {}), ...(config.http.caFile ? { caFile: config.http.caFile } : {}), declined: config.http.declined, ...(observe ? { observe } : {}) }) } : own
  const successRate = config.successRates[step.participant.successRate.env] ?? step.participant.successRate.default
  return participantRole(participantSpec(step), { successRate, allowChaos: config.allowChaos, retentionMs: config.retentionMs, stepTimeoutMs, ...(log ? { log: log.child({ step: step.name }) } : {}) })
}

/** The variable naming the service one participant bridges (SAGA_HTTP_URL_INVENTORY …), so one environment can serve every role. */
export function bridgeVariable(role: string): string {
  return `SAGA_HTTP_URL_${role.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`
}

export function bridgeUrl(http: Pick<HttpBridgeConfig, 'bridges'>, role: string): string | undefined {
  return http.bridges[bridgeVariable(role)]
}

export function groupId(config: Pick<Config, 'topicPrefix'>, role: RoleName): string {
  return `${config.topicPrefix}sagactl-${role}`
}

/** Each role that reads in a consumer group, as that group and the topic it reads. */
export function groupInputs(topicPrefix: string, saga: Saga): { groupId: string; topic: string }[] {
  const names = topicNames(topicPrefix, saga)
  return Object.entries(changelogInputs(saga)).map(([role, input]) => ({ groupId: groupId({ topicPrefix }, role as RoleName), topic: names[input] }))
}

/** Where this instance keeps its cache: its own directory when it is named. */
export function instanceDataDir(config: Config): string {
  return config.instanceId ? path.join(config.dataDir, config.instanceId) : config.dataDir
}

export function roleChangelog(config: Config, role: RoleName, saga: Saga): string | undefined {
  return role in changelogInputs(saga) ? changelogTopic(config.topicPrefix, role as ChangelogRole) : undefined
}

/** Test-only crash points, off unless SAGA_CRASH_AT is set (see docs/testing.md). */
function crashPlan(config: Config, role: RoleName): { crash?: CrashPlan } {
  if (!config.crash) return {}
  return { crash: { ...config.crash, marker: path.join(instanceDataDir(config), `${role}.crashed-${config.crash.at}`) } }
}

async function countRecords(bus: MessageBus, topic: string, partition: number, from: bigint): Promise<number> {
  let records = 0
  await bus.read({ topic, partitions: [partition], fromOffset: from, handler: () => void records++ })
  return records
}

export interface RunningRole {
  runtime: Runtime
  /** The api's listening address, e.g. http://127.0.0.1:3000. */
  url?: string
  /** Where another role serves its metrics, e.g. http://127.0.0.1:9410/metrics. */
  metricsUrl?: string
  stop(): Promise<void>
}

export async function startRole(name: RoleName, saga: Saga, config: Config, log: Logger, onFatal: (error: Error) => void): Promise<RunningRole> {
  // Diagnostics for `sagactl bench`, off unless SAGA_LOOP_STATS names a file or directory.
  const loopStats = startLoopStats(config.loopStats, { role: name, instance: config.instanceId })
  const bus: MessageBus = openBus(config, `sagactl-${name}`)
  // Started before Kafka (a Compose file, a pod): wait for it, as for a broker lost later.
  await waitForBroker(bus, { since: Date.now(), lostAfterMs: config.brokerLostAfterMs, log, what: config.brokers.join(',') })
  await bus.ensureTopics(topicSpecs(config.topicPrefix, saga))
  const dataFile = databasePath(instanceDataDir(config), name)
  const changelog = roleChangelog(config, name, saga)
  const db = openDatabase(dataFile, { synchronous: syncFor(config, changelog !== undefined) })
  let metrics: RoleMetrics | undefined
  const handler = roleHandler(name, config, saga, log, {
    call: (outcome) => metrics?.httpCall(outcome),
    circuit: (open) => {
      const url = bridgeUrl(config.http, name) ?? config.http.url
      if (open) log.warn({ url }, 'the HTTP service keeps failing: circuit open, calls wait a while')
      else log.info({ url }, 'the HTTP service answers again: circuit closed')
      metrics?.httpCircuit(open)
    },
  })
  await warnOnShortRetention(bus, config, saga, handler, log)
  const tracing = await loadTracing(`sagactl-${name}`, config.instanceId)
  // The api serves /metrics on its own port; the other roles only when given a metrics port.
  let runtime: Runtime | undefined
  /** Set while the consumer is away from the broker: why, and since when. */
  let connection: { lost: string; since: number } | undefined
  metrics =
    name === 'api' || config.metricsPort !== undefined
      ? new RoleMetrics({ role: name, saga, ...(config.instanceId ? { instance: config.instanceId } : {}), db: db.$client, owned: () => (handler.global ? null : (runtime?.ownedPartitions() ?? [])), endOffsets: (topic) => bus.endOffsets(topic), countRecords: (topic, partition, from) => countRecords(bus, topic, partition, from), queued: () => runtime?.queued() ?? { depth: 0, oldestAt: null } })
      : undefined
  const observer = roleObserver(metrics, tracing)
  runtime = new Runtime({
    role: metrics ? metrics.observeSagas(handler) : handler,
    db,
    bus,
    topics: topicNames(config.topicPrefix, saga),
    ...(changelog ? { changelog } : {}),
    log,
    groupId: groupId(config, name),
    // Dynamic membership unless the instance is named: two unnamed instances on one host must not fence each other.
    ...(config.instanceId ? { instanceId: `${groupId(config, name)}@${config.instanceId}` } : {}),
    onFatal,
    brokerLostAfterMs: config.brokerLostAfterMs,
    commitIntervalMs: config.commitIntervalMs,
    definition: definitionHash(saga),
    definitions: versionsOf(saga).map(definitionHash),
    onConnection: (event) => {
      if (event.kind === 'retry') return metrics?.brokerRetry(event.operation)
      connection = event.kind === 'lost' ? { lost: event.reason, since: Date.now() } : undefined
      metrics?.connection(event)
    },
    ...crashPlan(config, name),
    ...(observer ? { observer } : {}),
  })
  await runtime.start()
  const rt = runtime
  const pruner = retentionPruner(config, handler, rt, db, log)

  let url: string | undefined
  let metricsUrl: string | undefined
  let closeHttp = async (): Promise<void> => {}
  if (name === 'api') {
    let lastPing = { at: 0, ok: false }
    const app = buildApp(
      {
        submit: (work, trace) => rt.submit(work, trace),
        readOrder: (id) => rt.read<OrderView>(ORDER_SCOPE, id),
        health: async () => {
          if (Date.now() - lastPing.at > 2000) lastPing = { at: Date.now(), ok: await bus.ping() }
          if (!lastPing.ok) return { ok: false, reason: `the Kafka broker at ${config.brokers.join(',')} does not answer` }
          if (connection) return { ok: false, reason: `the consumer has been without the broker for ${Math.round((Date.now() - connection.since) / 1000)} s (${connection.lost})` }
          return { ok: true }
        },
        ...(metrics ? { metrics: async () => ({ contentType: metrics.contentType, text: await metrics.metrics() }) } : {}),
        ...(tracing ? { traceRequest: (spanName: string, incoming: Parameters<typeof tracing.request>[1], attributes: Record<string, string | number>) => tracing.request(spanName, incoming, attributes) } : {}),
      },
      { limits: config.orderLimits, idempotencyTtlMs: config.idempotencyTtlMs, awaitedEvents: waitsOf(saga).map((w) => w.event) },
      // Requests are not logged one by one: the outbox and the notifier already tell each order's story.
      { loggerInstance: log.child({ component: 'http' }, { level: 'warn' }) as never },
    )
    url = await app.listen({ port: config.port, host: config.host })
    closeHttp = () => app.close()
  } else if (metrics && config.metricsPort !== undefined) {
    const server = await serveMetrics(metrics, config.metricsPort, config.host)
    metricsUrl = server.url
    closeHttp = () => server.close()
  }
  log.info(startedFields(name, saga, config, { data: dataFile, ...(url ? { url } : {}), ...(metricsUrl ? { metrics: metricsUrl } : {}), ...(tracing ? { tracing: 'otlp' } : {}) }), `${name} started`)

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await closeHttp()
      await pruner.stop()
      await rt.stop()
      // After the last relay: its send spans go out with the rest.
      await tracing?.shutdown().catch(() => undefined)
      await bus.close()
      db.$client.close()
      loopStats.stop()
      log.info(`${name} stopped`)
    })())
  return { runtime: rt, ...(url ? { url } : {}), ...(metricsUrl ? { metricsUrl } : {}), stop }
}

/**
 * The fields of a role's start line. A bridged participant names the service it calls: that URL is
 * where a failing step's cause is, and no other line says it until a call fails. The logger already
 * carries the role.
 */
export function startedFields(name: RoleName, saga: Saga, config: Config, at: { data: string; url?: string; metrics?: string; tracing?: string }): Record<string, string> {
  const bridges = stepOfRole(saga, name) ? (bridgeUrl(config.http, name) ?? config.http.url) : undefined
  return { ...(config.instanceId ? { instance: config.instanceId } : {}), brokers: config.brokers.join(','), data: at.data, ...(at.url ? { url: at.url } : {}), ...(bridges ? { bridges } : {}), ...(at.metrics ? { metrics: at.metrics } : {}), ...(at.tracing ? { tracing: at.tracing } : {}) }
}

/**
 * Forgets what SAGA_RETENTION allows, in the background: only partitions this instance owns, each
 * batch one transaction that deletes the rows and tombstones their changelog keys.
 */
export function retentionPruner(config: Config, handler: RoleHandler, runtime: Runtime, db: Db, log: Logger): Pruner {
  const pruner = new Pruner({
    db,
    rule: { retentionMs: config.retentionMs, ...(handler.settled ? { settled: handler.settled.bind(handler) } : {}) },
    sentOutboxKeepMs: sentOutboxKeepMs(config.retentionMs),
    scope: () => (handler.global ? null : runtime.ownedPartitions()),
    forget: (part, entries) => runtime.forget(part, keysOf(entries)),
    log: log.child({ component: 'retention' }),
  })
  pruner.start(pruneIntervalMs(config.retentionMs))
  return pruner
}

/** A warning, not a refusal: a short SAGA_RETENTION is a choice (tests, a demo), its cost is said in docs/operations.md, "Retention". */
async function warnOnShortRetention(bus: MessageBus, config: Config, saga: Saga, handler: RoleHandler, log: Logger): Promise<void> {
  const names = topicNames(config.topicPrefix, saga)
  const inputs = handler.consumes.map((t) => names[t])
  try {
    for (const warning of retentionWarnings(config.retentionMs, await bus.topicRetentions(inputs))) log.warn({ retention_ms: config.retentionMs }, warning)
  } catch (error) {
    log.warn({ err: error }, "could not read the input topics' retention.ms to compare with SAGA_RETENTION")
  }
}
