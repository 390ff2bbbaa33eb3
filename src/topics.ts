import type { TopicSpec } from './kafka/port.js'
import type { Saga } from './saga/define.js'
import type { ParticipantRole, TopicKey } from './names.js'

export type { TopicKey } from './names.js'

export interface TopicEntry {
  name: string
  partitions: number
}

/** Every topic of a saga: order.events, each step's command topic, then the dead letters and control. */
export function topicTable(saga: Saga): Record<TopicKey, TopicEntry> {
  return Object.fromEntries([
    ['orderEvents', { name: 'order.events', partitions: 8 }],
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
