import type { PartitionCounts } from './config.js'
import { ConfigError } from './config-env.js'
import type { TopicSpec } from './kafka/port.js'
import type { Saga } from './saga/define.js'
import type { ParticipantRole, TopicKey } from './names.js'

export type { TopicKey } from './names.js'

export interface TopicEntry {
  name: string
  partitions: number
}

/** order.events' partition count when neither the saga nor SAGA_PARTITIONS gives one: the seed's. */
export const DEFAULT_EVENTS_PARTITIONS = 8

/** Every topic of a saga: order.events, each step's command topic, then the dead letters and control. */
export function topicTable(saga: Saga): Record<TopicKey, TopicEntry> {
  return Object.fromEntries([
    ['orderEvents', { name: 'order.events', partitions: saga.events?.partitions ?? DEFAULT_EVENTS_PARTITIONS }],
    ...saga.steps.map((s) => [s.topic.key, { name: s.topic.name, partitions: s.topic.partitions }]),
    ['dlq', { name: 'dlq', partitions: 1 }],
    // Acknowledgements of control commands (chaos); kept off order.events so the saga changelog stays pure.
    ['control', { name: 'sagactl.control', partitions: 1 }],
  ]) as Record<TopicKey, TopicEntry>
}


export type TopicNames = Record<TopicKey, string>

/**
 * Each stateful role's changelog: compacted, partitioned like the topic the role consumes, so
 * changelog partition p holds exactly the state of input partition p.
 */
export function changelogInputs(saga: Saga): Record<string, TopicKey> {
  return { orchestrator: 'orderEvents', ...Object.fromEntries(saga.steps.map((s) => [s.role, s.topic.key])), notifier: 'orderEvents' }
}

export type ChangelogRole = 'orchestrator' | 'notifier' | ParticipantRole

export function topicNames(prefix: string, saga: Saga): TopicNames {
  return Object.fromEntries(Object.entries(topicTable(saga)).map(([k, t]) => [k, prefix + t.name])) as TopicNames
}

export function changelogTopic(prefix: string, role: ChangelogRole): string {
  return `${prefix}sagactl.${role}.changelog`
}

export function topicSpecs(prefix: string, saga: Saga): TopicSpec[] {
  const table = topicTable(saga)
  return [
    ...Object.values(table).map((t) => ({ name: prefix + t.name, partitions: t.partitions })),
    ...Object.entries(changelogInputs(saga)).map(([role, input]) => ({ name: changelogTopic(prefix, role as ChangelogRole), partitions: table[input].partitions, compacted: true })),
  ]
}

/**
 * The saga with SAGA_PARTITIONS over its own counts, applied once where a command loads the saga so
 * that every reader of the counts (topic creation, the partition an order lives in, the AsyncAPI
 * document) sees the same. Only order.events and the step topics are settable: a changelog must
 * match its input topic, and dlq and sagactl.control carry little and are read whole.
 */
export function withPartitions(saga: Saga, counts: PartitionCounts): Saga {
  const named = Object.keys(counts)
  if (named.length === 0) return saga
  const settable = ['order.events', ...saga.steps.map((s) => s.topic.name)]
  const unknown = named.filter((t) => !settable.includes(t))
  if (unknown.length > 0) {
    throw new ConfigError(`SAGA_PARTITIONS names ${unknown.join(', ')}, not a topic whose partitions can be set; this saga's are ${settable.join(', ')} (each changelog follows its input topic; dlq and sagactl.control keep 1)`)
  }
  const events = counts['order.events']
  return {
    ...saga,
    ...(events !== undefined ? { events: { partitions: events } } : {}),
    steps: saga.steps.map((s) => {
      const partitions = counts[s.topic.name]
      return partitions === undefined ? s : { ...s, topic: { ...s.topic, partitions } }
    }),
    ...(saga.versions ? { versions: saga.versions.map((v) => withPartitions(v, Object.fromEntries(Object.entries(counts).filter(([t]) => t === 'order.events' || v.steps.some((s) => s.topic.name === t))))) } : {}),
  }
}
