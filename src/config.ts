import fs from 'node:fs'
import path from 'node:path'

import { DEFAULT_ORDER_LIMITS, type OrderLimits } from './order-schema.js'
import type { KafkaOptions } from './kafka/connection.js'
import { CRASH_POINTS, type CrashPlan } from './runtime/crash.js'
import { bool, bounded, ConfigError, duration, int, rate, type Env } from './config-env.js'
import { kafkaOptions } from './config-kafka.js'

export interface Config {
  brokers: string[]
  /** TLS, SASL and the durability of created topics. */
  kafka: KafkaOptions
  dataDir: string
  port: number
  topicPrefix: string
  retry: { minDelayMs: number; maxDelayMs: number; maxAttempts: number; maxCompensationAttempts: number }
  stepTimeoutMs: number
  allowChaos: boolean
  /** Names this instance of a role: its own data directory, and static group membership. */
  instanceId?: string
  /** Bounds of an order, enforced alike by the HTTP route, the orchestrator and the api's read model. */
  orderLimits: OrderLimits
  /** How long an Idempotency-Key names its order; after that the same key places a new one. */
  idempotencyTtlMs: number
  /**
   * SQLite's `synchronous`: FULL survives power loss with every commit, NORMAL only process crashes.
   * Unset: each role chooses (`syncFor`).
   */
  sqliteSynchronous?: SqliteSynchronous
  /** How long a finished order's state, processed ids and sent outbox rows are kept (see docs/operations.md, "Retention"). */
  retentionMs: number
  /** How long the broker may stay unreachable, at start or later, before a role exits. */
  brokerLostAfterMs: number
  /** How often, at most, a partition commits its changelog records and consumed offset (SAGA_COMMIT_INTERVAL). */
  commitIntervalMs: number
  /** Where a role other than the api serves GET /metrics; absent: not served. */
  metricsPort?: number
  /** A participant that bridges an existing HTTP service (SAGA_HTTP_URL, `start <role> --url`). */
  http: HttpBridgeConfig
  /** Each participant's success rate by the variable its step module names (INVENTORY_SUCCESS_RATE …); a step not named keeps its default. */
  successRates: Record<string, number>
  /** The address the api and the metrics server listen on (HOST). */
  host: string
  /** The token `sagactl ui` asks of every action (SAGA_UI_TOKEN); absent: actions only when bound to loopback. */
  uiToken?: string
  /** Diagnostics for `sagactl bench` (SAGA_LOOP_STATS): a file or directory for event-loop delays. */
  loopStats?: string
  /** Test-only crash point (SAGA_CRASH_AT, SAGA_CRASH_ON, SAGA_CRASH_SIGNAL; see docs/testing.md). */
  crash?: Omit<CrashPlan, 'marker'>
}

export interface HttpBridgeConfig {
  /** The service's base URL: each command is POSTed to <url>/<command type>. Absent: the step's own code or the stub. */
  url?: string
  token?: string
  caFile?: string
  /** Statuses that decline the step for good. */
  declined: number[]
  /** One participant's own service, by its variable (SAGA_HTTP_URL_INVENTORY …); it wins over `url`. */
  bridges: Record<string, string>
}

export type SqliteSynchronous = 'FULL' | 'NORMAL'

// A day, as payment APIs keep their keys: long enough for any client's retries.
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 3_600_000

// Ten resends a step timeout apart (five minutes at the default 30 s) outlast a participant's
// restart or deploy; a longer outage is for a person to look at, and its backlog still settles the saga.
export const DEFAULT_MAX_COMPENSATION_ATTEMPTS = 10
// Kafka's own default retention.ms: a duplicate cannot come from a topic after that.
export const DEFAULT_RETENTION_MS = 7 * 86_400_000

// Long enough for a broker's restart or a leader election, short enough that an orchestrator
// (Compose, Kubernetes) hears of a cluster that is really gone.
export const DEFAULT_BROKER_LOST_AFTER_MS = 5 * 60_000
// Outputs never wait for it: it bounds what a new owner handles again after a crash, and spreads
// each transaction's cost to the broker (markers, the coordinator's log) over more records.
export const DEFAULT_COMMIT_INTERVAL_MS = 100

function synchronous(env: Env): SqliteSynchronous | undefined {
  const raw = env.SAGA_SQLITE_SYNC
  if (raw === undefined || raw === '') return undefined
  const value = raw.toUpperCase()
  if (value !== 'FULL' && value !== 'NORMAL') throw new ConfigError(`SAGA_SQLITE_SYNC must be FULL or NORMAL, got "${raw}"`)
  return value
}

/** Partition counts by topic name (without SAGA_TOPIC_PREFIX); a topic not named keeps the saga's count. */
export type PartitionCounts = Record<string, number>

/**
 * SAGA_PARTITIONS, e.g. `order.events=16,inventory.commands=8`: the partition counts of topics a new
 * deployment creates. Which names the saga has is checked where the saga is known (withPartitions).
 */
export function partitionCounts(env: Env): PartitionCounts {
  const raw = env.SAGA_PARTITIONS
  if (raw === undefined || raw.trim() === '') return {}
  const counts = new Map<string, number>()
  for (const pair of raw.split(',')) {
    const match = /^\s*([A-Za-z0-9._-]+)\s*=\s*(\d+)\s*$/.exec(pair)
    const count = match ? Number(match[2]) : NaN
    if (!match || !Number.isSafeInteger(count) || count < 1) {
      throw new ConfigError(`SAGA_PARTITIONS must be topic=count pairs, comma-separated, each count a whole number ≥ 1, such as "order.events=16,inventory.commands=8", got "${raw}"`)
    }
    if (counts.has(match[1]!)) throw new ConfigError(`SAGA_PARTITIONS names topic ${match[1]} twice, got "${raw}"`)
    counts.set(match[1]!, count)
  }
  return Object.fromEntries(counts)
}

function crashPoint(env: Env): Config['crash'] {
  const at = env.SAGA_CRASH_AT
  if (at === undefined || at === '') return undefined
  const point = CRASH_POINTS.find((p) => p === at)
  if (!point) throw new ConfigError(`SAGA_CRASH_AT must be one of ${CRASH_POINTS.join(', ')}, got "${at}"`)
  const onType = env.SAGA_CRASH_ON || undefined
  const signal = env.SAGA_CRASH_SIGNAL || undefined
  if (signal !== undefined && signal !== 'SIGKILL' && signal !== 'SIGSTOP') throw new ConfigError(`SAGA_CRASH_SIGNAL must be SIGKILL or SIGSTOP, got "${signal}"`)
  return { at: point, ...(onType ? { onType } : {}), ...(signal ? { signal } : {}) }
}

// A step module names its own variable, so every one present is checked, known step or not.
function successRates(env: Env): Record<string, number> {
  const names = Object.keys(env).filter((name) => name.endsWith('_SUCCESS_RATE') && env[name] !== '')
  return Object.fromEntries(names.map((name) => [name, rate(env, name, 1)]))
}

export function loadConfig(env: Env = process.env, defaults: { allowChaos?: boolean } = {}): Config {
  const brokers = (env.KAFKA_BROKERS || '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean)
  for (const broker of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(broker)) throw new ConfigError(`KAFKA_BROKERS must be host:port[,host:port…], got "${env.KAFKA_BROKERS}"`)
  }
  const prefix = env.SAGA_TOPIC_PREFIX ?? ''
  if (!/^[A-Za-z0-9._-]*$/.test(prefix)) throw new ConfigError(`SAGA_TOPIC_PREFIX may only hold letters, digits, ".", "_" and "-", got "${prefix}"`)
  const minDelayMs = int(env, 'SAGA_RETRY_MIN_DELAY_MS', 5000, 0)
  const maxDelayMs = int(env, 'SAGA_RETRY_MAX_DELAY_MS', 10000, 0)
  if (maxDelayMs < minDelayMs) {
    throw new ConfigError(`SAGA_RETRY_MAX_DELAY_MS (${maxDelayMs}) must not be below SAGA_RETRY_MIN_DELAY_MS (${minDelayMs})`)
  }
  const instanceId = env.SAGA_INSTANCE_ID || undefined
  if (instanceId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(instanceId)) {
    throw new ConfigError(`SAGA_INSTANCE_ID may only hold letters, digits, ".", "_" and "-" (at most 64), got "${instanceId}"`)
  }
  const port = int(env, 'PORT', 3000, 0)
  if (port > 65535) throw new ConfigError(`PORT must be at most 65535, got "${env.PORT}"`)
  const metricsPort = env.SAGA_METRICS_PORT ? int(env, 'SAGA_METRICS_PORT', 0, 0) : undefined
  if (metricsPort !== undefined && metricsPort > 65535) throw new ConfigError(`SAGA_METRICS_PORT must be at most 65535, got "${env.SAGA_METRICS_PORT}"`)
  const sqliteSynchronous = synchronous(env)
  const crash = crashPoint(env)
  return {
    brokers,
    kafka: kafkaOptions(env),
    dataDir: path.resolve(env.SAGA_DATA_DIR || './.sagactl'),
    port,
    topicPrefix: prefix,
    retry: { minDelayMs, maxDelayMs, maxAttempts: int(env, 'SAGA_MAX_ATTEMPTS', 3, 1), maxCompensationAttempts: int(env, 'SAGA_MAX_COMPENSATION_ATTEMPTS', DEFAULT_MAX_COMPENSATION_ATTEMPTS, 1) },
    stepTimeoutMs: int(env, 'SAGA_STEP_TIMEOUT_MS', 30000, 1),
    allowChaos: bool(env, 'SAGA_ALLOW_CHAOS', defaults.allowChaos ?? false),
    ...(instanceId ? { instanceId } : {}),
    orderLimits: {
      maxAmount: bounded(env, 'SAGA_MAX_AMOUNT', DEFAULT_ORDER_LIMITS.maxAmount, 1, Number.MAX_SAFE_INTEGER),
      maxQty: bounded(env, 'SAGA_MAX_QTY', DEFAULT_ORDER_LIMITS.maxQty, 1, Number.MAX_SAFE_INTEGER),
    },
    idempotencyTtlMs: duration(env, 'SAGA_IDEMPOTENCY_TTL', DEFAULT_IDEMPOTENCY_TTL_MS),
    ...(sqliteSynchronous ? { sqliteSynchronous } : {}),
    retentionMs: duration(env, 'SAGA_RETENTION', DEFAULT_RETENTION_MS),
    brokerLostAfterMs: duration(env, 'SAGA_BROKER_LOST_AFTER', DEFAULT_BROKER_LOST_AFTER_MS),
    commitIntervalMs: duration(env, 'SAGA_COMMIT_INTERVAL', DEFAULT_COMMIT_INTERVAL_MS),
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    http: httpBridge(env),
    successRates: successRates(env),
    host: env.HOST || '0.0.0.0',
    ...(env.SAGA_UI_TOKEN ? { uiToken: env.SAGA_UI_TOKEN } : {}),
    ...(env.SAGA_LOOP_STATS ? { loopStats: env.SAGA_LOOP_STATS } : {}),
    ...(crash ? { crash } : {}),
  }
}

/** A bridged service's base URL, from the variable or flag `name`. */
export function httpUrl(name: string, url: string): string {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new ConfigError(`${name} must be an http:// or https:// URL, got "${url}"`)
  return url
}

function httpBridge(env: Env): HttpBridgeConfig {
  const url = env.SAGA_HTTP_URL ? httpUrl('SAGA_HTTP_URL', env.SAGA_HTTP_URL) : undefined
  const caFile = env.SAGA_HTTP_CA_FILE || undefined
  if (caFile !== undefined && !fs.existsSync(caFile)) throw new ConfigError(`SAGA_HTTP_CA_FILE names no file: "${caFile}"`)
  const raw = env.SAGA_HTTP_DECLINED_STATUSES || '409,422'
  const declined = raw.split(',').map((v) => Number(v.trim()))
  if (declined.some((v) => !Number.isInteger(v) || v < 400 || v > 499)) throw new ConfigError(`SAGA_HTTP_DECLINED_STATUSES must be 4xx statuses, comma-separated, got "${raw}"`)
  const bridges = Object.keys(env).filter((name) => name.startsWith('SAGA_HTTP_URL_') && env[name])
  return { ...(url ? { url } : {}), ...(env.SAGA_HTTP_TOKEN ? { token: env.SAGA_HTTP_TOKEN } : {}), ...(caFile ? { caFile } : {}), declined, bridges: Object.fromEntries(bridges.map((name) => [name, httpUrl(name, env[name]!)])) }
}

/**
 * A role whose file is a cache of its changelog gains nothing from a sync per commit: what power
 * loss takes from the file was not yet published either (the output, the changelog and the consumed
 * offset travel in one Kafka transaction after the commit), so its input is read again and, decisions
 * being deterministic, handled to the same messages; and every assignment restores the partition
 * from the changelog anyway. A role without one (the api: orders accepted and not yet published)
 * keeps FULL.
 */
export function syncFor(config: Pick<Config, 'sqliteSynchronous'>, hasChangelog: boolean): SqliteSynchronous {
  return config.sqliteSynchronous ?? (hasChangelog ? 'NORMAL' : 'FULL')
}
