import { Admin, ConfigResourceTypes } from '@platformatic/kafka'

import type { TopicRetention } from '../runtime/retention.js'
import type { KafkaOptions } from './connection.js'
import { connectionOptions } from './platformatic.js'

/** retention.ms of each topic, as the broker reports it (its default when the topic sets none). */
export async function topicRetentions(brokers: string[], kafka: KafkaOptions, topics: string[]): Promise<TopicRetention[]> {
  const admin = new Admin({ clientId: 'sagactl-retention', ...connectionOptions(brokers, kafka) })
  try {
    const described = await admin.describeConfigs({ resources: topics.map((t) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: t, configurationKeys: ['retention.ms'] })) })
    return described.flatMap((d) => {
      const value = Number(d.configs.find((c) => c.name === 'retention.ms')?.value)
      return Number.isFinite(value) ? [{ topic: d.resourceName, retentionMs: value }] : []
    })
  } finally {
    await admin.close().catch(() => undefined)
  }
}
