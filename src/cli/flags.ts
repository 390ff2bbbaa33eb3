import path from 'node:path'

import { Errors, Flags } from '@oclif/core'

import { loadConfig, partitionCounts, type Config } from '../config.js'
import { ConfigError } from '../config-env.js'
import { unknownTopic } from '../kafka/explain.js'
import { loadSaga } from '../load-saga.js'
import type { Saga } from '../saga/define.js'
import { topicNames, withPartitions } from '../topics.js'

export const connectionFlags = {
  brokers: Flags.string({ description: 'Kafka bootstrap servers, host:port[,…] (overrides KAFKA_BROKERS)' }),
  'data-dir': Flags.string({ description: "directory of each role's SQLite file (overrides SAGA_DATA_DIR)" }),
  saga: Flags.string({ description: 'your saga: a built JavaScript module whose default export is defineSaga(...) (overrides SAGA_DEFINITION_MODULE); every role of one system runs the same one' }),
}

/** Environment first, then flags on top; a bad value stops the command with the variable's name. */
export function configFrom(flags: { brokers?: string; 'data-dir'?: string; port?: number; 'instance-id'?: string; 'metrics-port'?: number }, defaults: { allowChaos?: boolean } = {}): Config {
  const env = { ...process.env }
  if (flags.brokers) env.KAFKA_BROKERS = flags.brokers
  if (flags['data-dir']) env.SAGA_DATA_DIR = flags['data-dir']
  if (flags.port !== undefined) env.PORT = String(flags.port)
  if (flags['instance-id']) env.SAGA_INSTANCE_ID = flags['instance-id']
  if (flags['metrics-port'] !== undefined) env.SAGA_METRICS_PORT = String(flags['metrics-port'])
  try {
    return loadConfig(env, defaults)
  } catch (error) {
    if (error instanceof ConfigError) throw new Errors.CLIError(error.message, { exit: 2 })
    throw error
  }
}

/**
 * The saga this command runs: `--saga`, else SAGA_DEFINITION_MODULE, else the order saga, with
 * SAGA_PARTITIONS over its partition counts. Loaded once, here at the edge, and passed down. A
 * module that fails, or a bad SAGA_PARTITIONS, ends the command with one sentence.
 */
export async function sagaFrom(flags: { saga?: string | undefined }): Promise<Saga> {
  // The roles a command starts (dev, soak, bench) inherit it.
  if (flags.saga) process.env.SAGA_DEFINITION_MODULE = path.resolve(flags.saga)
  try {
    return withPartitions(await loadSaga(process.env.SAGA_DEFINITION_MODULE), partitionCounts(process.env))
  } catch (error) {
    throw new Errors.CLIError((error as Error).message, { exit: 2 })
  }
}

/** The module the saga came from; undefined: the default saga, the order saga. Read after sagaFrom. */
export function sagaModule(env: Record<string, string | undefined> = process.env): string | undefined {
  return env.SAGA_DEFINITION_MODULE || undefined
}

// Run without --saga, a command reads the order saga's topics and knows its roles: against a system
// that runs another saga, the client's "Unknown topic inventory.commands" is all a user would see.
const DEFAULT_SAGA = 'the default saga (the order saga)'

/**
 * One sentence for a topic the broker does not have. A step's command topic is the saga's own, so
 * its absence says which saga was read; the others (order.events, the changelogs) every saga has.
 */
export function missingTopicMessage(topic: string, at: { module: string | undefined; brokers: string[]; topicPrefix: string; stepTopics: string[] }): string {
  const where = `No topic ${topic} on the broker at ${at.brokers.join(',')}`
  const prefix = `SAGA_TOPIC_PREFIX="${at.topicPrefix}"`
  if (!at.stepTopics.includes(topic)) return `${where}: no role has run there with ${prefix}; check --brokers and SAGA_TOPIC_PREFIX.`
  if (at.module === undefined) {
    return `${where}: it is a topic of ${DEFAULT_SAGA}, read because neither --saga nor SAGA_DEFINITION_MODULE names another; if your system runs a saga of its own, pass --saga <module> (the module \`sagactl dev --saga\` runs), else check --brokers and ${prefix}.`
  }
  return `${where}: the saga in ${at.module} uses it, and no role of that saga has run there with ${prefix}; check --saga, --brokers and SAGA_TOPIC_PREFIX.`
}

/** What to say of a role the saga does not have: without --saga, that the roles listed are the order saga's. */
export function unknownRoleMessage(role: string, roles: string[], module: string | undefined): string {
  const expected = `Expected the role to be one of: ${roles.join(', ')}, participant (got "${role}")`
  if (module === undefined) return `${expected}: those are the roles of ${DEFAULT_SAGA}; if "${role}" is a role of your saga, pass --saga <module>.`
  return `${expected}: the roles of the saga in ${module}.`
}

/**
 * For a command that reads the saga's topics: the client's unknown-topic error as one sentence
 * (exit 1, as any failed read); anything else as it was.
 */
export function explainMissingTopic(error: unknown, config: Pick<Config, 'brokers' | 'topicPrefix'>, saga: Saga): unknown {
  const topic = unknownTopic(error)
  if (topic === undefined) return error
  const names = topicNames(config.topicPrefix, saga)
  const stepTopics = saga.steps.map((s) => names[s.topic.key])
  return new Errors.CLIError(missingTopicMessage(topic, { module: sagaModule(), brokers: config.brokers, topicPrefix: config.topicPrefix, stepTopics }), { exit: 1 })
}
