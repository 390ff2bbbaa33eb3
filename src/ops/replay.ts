import type { Logger } from 'pino'

import { syncFor, type Config } from '../config.js'
import { databasePath, openDatabase } from '../db/database.js'
import type { MessageBus, ProducedRecord } from '../kafka/port.js'
import type { RoleName, Saga } from '../saga/define.js'
import { Runtime, type Outcome } from '../runtime/runtime.js'
import { topicNames } from '../topics.js'
import { readSagaMessages } from '../services/orchestrator/saga-log.js'
import { groupId, instanceDataDir, roleChangelog, roleHandler } from '../services/start-role.js'

export interface ReplayOptions {
  saga: Saga
  fromOffset: bigint
  partitions?: number[]
  roles: RoleName[]
  onProgress?: (done: number, total: number) => void
}

export interface RoleReplay {
  role: RoleName
  processed: number
  duplicate: number
  dead_lettered: number
  published: number
  /** Outgoing messages already on their topic (same message_id): not sent again. */
  suppressed: number
  /** State records written to the role's changelog, so running instances restore the rebuilt state. */
  changelog_records: number
}

export interface ReplayReport {
  from_offset: string
  partitions: number[] | 'all'
  records: number
  roles: RoleReplay[]
}

/**
 * Re-feeds order.events through the roles' own handling, against their own databases. Outgoing
 * ids are derived from the message handled, so whatever a replay re-decides that is already on
 * Kafka is recognised by message_id and not published twice.
 */
export async function replay(bus: MessageBus, config: Config, log: Logger, options: ReplayOptions): Promise<ReplayReport> {
  const names = topicNames(config.topicPrefix, options.saga)
  const published = new Set((await readSagaMessages(bus, names, options.saga)).map((m) => m.message_id))

  const runs = options.roles.map((role) => {
    const stats: RoleReplay = { role, processed: 0, duplicate: 0, dead_lettered: 0, published: 0, suppressed: 0, changelog_records: 0 }
    const changelog = roleChangelog(config, role, options.saga)
    const filtering: MessageBus = {
      publish: async (records: ProducedRecord[]) => {
        const state = records.filter((r) => r.topic === changelog)
        const messages = records.filter((r) => r.topic !== changelog)
        const fresh = messages.filter((r) => !published.has(messageIdOf(r)))
        stats.suppressed += messages.length - fresh.length
        stats.published += fresh.length
        stats.changelog_records += state.length
        await bus.publish([...fresh, ...state])
      },
      subscribe: (o) => bus.subscribe(o),
      read: (o) => bus.read(o),
      tail: (o) => bus.tail(o),
      endOffsets: (t) => bus.endOffsets(t),
      committedOffsets: (g, t) => bus.committedOffsets(g, t),
      ensureTopics: (t) => bus.ensureTopics(t),
      topicRetentions: (t) => bus.topicRetentions(t),
      partitionOf: (k, n) => bus.partitionOf(k, n),
      ping: () => bus.ping(),
      reach: () => bus.reach(),
      close: async () => {},
    }
    const db = openDatabase(databasePath(instanceDataDir(config), role), { synchronous: syncFor(config, changelog !== undefined) })
    const runtime = new Runtime({ role: roleHandler(role, config, options.saga), db, bus: filtering, topics: names, ...(changelog ? { changelog } : {}), log: log.child({ replaying: role }), groupId: groupId(config, role) })
    return { runtime, db, stats }
  })

  const ends = await bus.endOffsets(names.orderEvents)
  const partitions = options.partitions ?? ends.map((_, p) => p)
  const total = partitions.reduce((sum, p) => sum + Number((ends[p] ?? 0n) > options.fromOffset ? (ends[p] ?? 0n) - options.fromOffset : 0n), 0)
  let done = 0
  try {
    await bus.read({
      topic: names.orderEvents,
      fromOffset: options.fromOffset,
      partitions,
      handler: (record) => {
        for (const run of runs) {
          const outcome: Outcome = run.runtime.handleRecord(record)
          if (outcome === 'not-owned') continue
          const key = outcome === 'dead-lettered' ? 'dead_lettered' : outcome
          run.stats[key]++
        }
        options.onProgress?.(++done, total)
      },
    })
    for (const run of runs) await run.runtime.drain(30_000)
  } finally {
    for (const run of runs) run.db.$client.close()
  }
  return { from_offset: options.fromOffset.toString(), partitions: options.partitions ?? 'all', records: done, roles: runs.map((r) => r.stats) }
}

function messageIdOf(record: ProducedRecord): string {
  try {
    return String((JSON.parse(record.value?.toString() ?? '') as { message_id?: unknown }).message_id ?? '')
  } catch {
    return ''
  }
}
