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

export function topicNames(prefix: string): TopicNames {
  return Object.fromEntries(Object.entries(TOPICS).map(([k, t]) => [k, prefix + t.name])) as TopicNames
}

export function topicSpecs(prefix: string): { name: string; partitions: number }[] {
  return Object.values(TOPICS).map((t) => ({ name: prefix + t.name, partitions: t.partitions }))
}
