import { randomUUID } from 'node:crypto'

import { Admin, ConfigResourceTypes, ConfigSources } from '@platformatic/kafka'
import { afterAll, describe, expect, inject, it } from 'vitest'

import { openBus } from '../../src/kafka/open-bus.js'
import { System } from './harness.js'

describe('topics sagactl creates, on the shared single broker', () => {
  const brokers = inject('brokers')
  const prefix = `t${randomUUID().slice(0, 8)}.`
  const admin = new Admin({ clientId: 'topic-settings-test', bootstrapBrokers: [brokers] })
  afterAll(async () => {
    await admin.close()
  })

  const configsOf = async (topic: string): Promise<Map<string, { value: string | null | undefined; configSource: number }>> => {
    const [described] = await admin.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic }] })
    return new Map(described!.configs.map((c) => [c.name, { value: c.value, configSource: c.configSource }]))
  }

  it('carry min.insync.replicas, compaction when a spec asks, and extra configs, all set on the topic and read back as the role reads retention.ms', async () => {
    const bus = openBus({ brokers: [brokers], kafka: { replicationFactor: 1, minInsyncReplicas: 1 } }, 'topic-settings-test')
    try {
      await bus.ensureTopics([
        { name: `${prefix}changelog`, partitions: 2, compacted: true },
        { name: `${prefix}plain`, partitions: 1, config: { 'retention.ms': '3600000' } },
      ])
      // What a role compares with SAGA_RETENTION at start.
      expect(await bus.topicRetentions([`${prefix}plain`])).toEqual([{ topic: `${prefix}plain`, retentionMs: 3_600_000 }])
    } finally {
      await bus.close()
    }
    const topic = { value: expect.any(String), configSource: ConfigSources.TOPIC_CONFIG }
    const changelog = await configsOf(`${prefix}changelog`)
    expect(changelog.get('cleanup.policy')).toEqual({ ...topic, value: 'compact' })
    expect(changelog.get('min.insync.replicas')).toEqual({ ...topic, value: '1' })
    const plain = await configsOf(`${prefix}plain`)
    expect(plain.get('cleanup.policy')).toMatchObject({ value: 'delete' })
    expect(plain.get('cleanup.policy')!.configSource).not.toBe(ConfigSources.TOPIC_CONFIG)
    expect(plain.get('retention.ms')).toEqual({ ...topic, value: '3600000' })
  })

  it('SAGA_REPLICATION_FACTOR above the broker count: `sagactl start` exits 1 with one sentence naming the variable', async () => {
    const cli = new System({ SAGA_REPLICATION_FACTOR: '3' })
    try {
      const result = await cli.cli(['start', 'notifier'])
      expect(result.code).toBe(1)
      expect(result.stderr.replace(/\s+/g, ' ')).toContain('Cannot create a topic with SAGA_REPLICATION_FACTOR=3: Unable to replicate the partition 3 time(s)')
      expect(result.stderr).not.toMatch(/^\s+at /m)
    } finally {
      await cli.stop()
    }
  })
})
