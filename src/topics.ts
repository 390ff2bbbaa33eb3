import type { TopicSpec } from './kafka/port.js'

export const TOPICS = {
  orderEvents: { name: 'order.events', partitions: 8 },
  inventoryCommands: { name: 'inventory.commands', partitions: 4 },
  paymentCommands: { name: 'payment.commands', partitions: 4 },
  dlq: { name: 'dlq', partitions: 1 },
  // Acknowledgements of control commands (chaos); kept off order.events so the saga changelog stays pure.
  control: { name: 'sagactl.control', partitions: 1 },
} as const

export type TopicKey = keyof typeof TOPICS

export type TopicNames = Record<TopicKey, string>

/**
 * Each stateful role's changelog: compacted, partitioned like the topic the role consumes, so
 * changelog partition p holds exactly the state of input partition p.
 */
export const CHANGELOGS = {
  orchestrator: 'orderEvents',
  inventory: 'inventoryCommands',
  payment: 'paymentCommands',
  notifier: 'orderEvents',
} as const satisfies Record<string, TopicKey>

export type ChangelogRole = keyof typeof CHANGELOGS

export function topicNames(prefix: string): TopicNames {
  return Object.fromEntries(Object.entries(TOPICS).map(([k, t]) => [k, prefix + t.name])) as TopicNames
}

export function changelogTopic(prefix: string, role: ChangelogRole): string {
  return `${prefix}sagactl.${role}.changelog`
}

export function topicSpecs(prefix: string): TopicSpec[] {
  return [
    ...Object.values(TOPICS).map((t) => ({ name: prefix + t.name, partitions: t.partitions })),
    ...Object.entries(CHANGELOGS).map(([role, input]) => ({ name: changelogTopic(prefix, role as ChangelogRole), partitions: TOPICS[input].partitions, compacted: true })),
  ]
}
