import { randomUUID } from 'node:crypto'

import { Admin, ConfigResourceTypes, Consumer } from '@platformatic/kafka'

import { closeQuietly, type ClientFactory } from './client.js'
import type { KafkaOptions } from './connection.js'
import { TopicMismatchError, type TopicRetention, type TopicSpec } from './port.js'

export async function endOffsets(client: ClientFactory, topic: string): Promise<bigint[]> {
  const consumer = new Consumer({ ...client('offsets'), groupId: `sagactl-offsets-${randomUUID()}` })
  try {
    return (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? []
  } finally {
    await closeQuietly(() => consumer.close(true))
  }
}

export async function committedOffsets(client: ClientFactory, groupId: string, topic: string): Promise<bigint[]> {
  const partitions = (await endOffsets(client, topic)).map((_, p) => p)
  const admin = new Admin(client('admin'))
  try {
    const [group] = await admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: [{ name: topic, partitionIndexes: partitions }] }] })
    const committed = partitions.map(() => -1n)
    for (const p of group?.topics.find((t) => t.name === topic)?.partitions ?? []) committed[p.partitionIndex] = p.committedOffset
    return committed
  } finally {
    await admin.close().catch(() => undefined)
  }
}

export async function ensureTopics(client: ClientFactory, options: KafkaOptions, specs: TopicSpec[]): Promise<void> {
  const admin = new Admin(client('admin'))
  try {
    const existing = new Set(await admin.listTopics())
    const missing = specs.filter((s) => !existing.has(s.name))
    for (const spec of missing) {
      try {
        await admin.createTopics({ topics: [spec.name], partitions: spec.partitions, replicas: spec.replicationFactor ?? options.replicationFactor ?? 1, configs: topicConfigs(spec, options) })
      } catch (error) {
        // Another role may have created it a moment ago; the partition check below decides.
        if (!/already exists/i.test(String((error as Error).message) + JSON.stringify((error as { errors?: unknown }).errors ?? ''))) throw error
      }
    }
    await requireCompaction(admin, specs.filter((s) => s.compacted))
    const metadata = await admin.metadata({ topics: specs.map((s) => s.name) })
    const wrong = specs
      .map((s) => ({ ...s, actual: metadata.topics.get(s.name)?.partitionsCount }))
      .filter((s) => s.actual !== s.partitions)
    if (wrong.length > 0) {
      throw new TopicMismatchError(
        wrong.map((w) => `topic "${w.name}" has ${w.actual ?? 'no'} partitions, sagactl needs ${w.partitions}`).join('; ') +
          '. Give every role the SAGA_PARTITIONS (and saga) the topics were created with, or delete and recreate them (or use another SAGA_TOPIC_PREFIX); sagactl will not repartition an existing topic.',
      )
    }
  } finally {
    await admin.close().catch(() => undefined)
  }
}

/** A changelog that is not compacted grows for ever and restores ever slower: refuse it. */
async function requireCompaction(admin: Admin, specs: TopicSpec[]): Promise<void> {
  if (specs.length === 0) return
  const described = await admin.describeConfigs({ resources: specs.map((s) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: s.name, configurationKeys: ['cleanup.policy'] })) })
  const loose = described.filter((d) => !String(d.configs.find((c) => c.name === 'cleanup.policy')?.value ?? '').includes('compact'))
  if (loose.length > 0) {
    throw new TopicMismatchError(`topic${loose.length > 1 ? 's' : ''} ${loose.map((d) => `"${d.resourceName}"`).join(', ')} must have cleanup.policy=compact (a changelog); set it with kafka-configs.sh or delete the topic so sagactl creates it`)
  }
}

export async function reach(client: ClientFactory): Promise<void> {
  const admin = new Admin({ ...client('ping'), retries: 0, timeout: 2000 })
  try {
    await admin.metadata({ topics: [] })
  } finally {
    await admin.close().catch(() => undefined)
  }
}

/** retention.ms of each topic, as the broker reports it (its default when the topic sets none). */
export async function topicRetentions(client: ClientFactory, topics: string[]): Promise<TopicRetention[]> {
  const admin = new Admin(client('retention'))
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

function topicConfigs(spec: TopicSpec, options: KafkaOptions): { name: string; value: string }[] {
  const config: Record<string, string> = {
    ...(options.minInsyncReplicas !== undefined ? { 'min.insync.replicas': String(options.minInsyncReplicas) } : {}),
    ...(spec.compacted ? { 'cleanup.policy': 'compact' } : {}),
    ...spec.config,
  }
  return Object.entries(config).map(([name, value]) => ({ name, value }))
}
