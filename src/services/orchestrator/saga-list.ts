import type { ConsumedRecord, MessageBus } from '../../kafka/port.js'
import { SAGA_SCOPE } from './role.js'
import { SAGA_STATUSES, type SagaState } from '../../saga/decide.js'

/** Every status an operator may ask for: every status a saga can be in, from the engine's one list. */
export const SAGA_LIST_STATUSES = SAGA_STATUSES
export type ListedStatus = (typeof SAGA_LIST_STATUSES)[number]

export interface SagaFilter {
  statuses?: readonly string[]
  /** Only sagas started at least this long before `now`. */
  olderThanMs?: number
  /** Only sagas started under these versions (names, or definition hashes). */
  versions?: readonly string[]
  limit?: number
}

export interface SagaSummary {
  order_id: string
  saga_id: string
  /** A string, not SagaStatus: the changelog may hold a status newer than this reader. */
  status: string
  step: string
  attempt: number
  reason: string | null
  /** The version it started under, by name; null for a saga started before versions were recorded. */
  version: string | null
  started_at: string
  updated_at: string
  finished_at: string | null
}

export interface SagaList {
  /** How many sagas matched before `limit` cut the list. */
  matched: number
  sagas: SagaSummary[]
}

const SAGA_KEY = `s|${SAGA_SCOPE}|`

/**
 * Folds changelog records into the current sagas: the latest record per key wins and a tombstone
 * deletes its key, which is what compaction will leave behind anyway, so the answer does not depend
 * on whether the cleaner has run yet.
 */
export function latestSagas(records: Iterable<Pick<ConsumedRecord, 'key' | 'value'>>): SagaState[] {
  const latest = new Map<string, SagaState>()
  for (const record of records) {
    const key = record.key?.toString('utf8') ?? ''
    if (!key.startsWith(SAGA_KEY)) continue
    if (!record.value) {
      latest.delete(key)
      continue
    }
    try {
      latest.set(key, JSON.parse(record.value.toString('utf8')) as SagaState)
    } catch {
      // Only the runtime writes this topic; one unreadable value must not hide every other saga.
      latest.delete(key)
    }
  }
  return [...latest.values()]
}

export function selectSagas(states: readonly SagaState[], filter: SagaFilter, now: number): SagaList {
  const statuses = filter.statuses && filter.statuses.length > 0 ? new Set(filter.statuses) : undefined
  const matching = states
    .filter((s) => !statuses || statuses.has(s.status))
    .filter((s) => filter.olderThanMs === undefined || now - s.started_at >= filter.olderThanMs)
    .filter((s) => !filter.versions || filter.versions.length === 0 || (s.version !== undefined && (filter.versions.includes(s.version.name) || filter.versions.includes(s.version.hash))))
    .sort((a, b) => b.started_at - a.started_at || (a.order_id < b.order_id ? -1 : a.order_id > b.order_id ? 1 : 0))
  const kept = filter.limit === undefined ? matching : matching.slice(0, filter.limit)
  return { matched: matching.length, sagas: kept.map(summaryOf) }
}

function summaryOf(s: SagaState): SagaSummary {
  return {
    order_id: s.order_id,
    saga_id: s.saga_id,
    status: s.status,
    step: s.step,
    attempt: s.attempt,
    reason: s.reason ?? null,
    version: s.version?.name ?? null,
    started_at: new Date(s.started_at).toISOString(),
    updated_at: new Date(s.updated_at).toISOString(),
    finished_at: s.finished_at ? new Date(s.finished_at).toISOString() : null,
  }
}

export class NoChangelog extends Error {}

/** Reads the whole changelog (read_committed, up to its current end): the broker is the only source. */
export async function listSagas(bus: MessageBus, changelog: string, filter: SagaFilter, now: number): Promise<SagaList> {
  const records: Pick<ConsumedRecord, 'key' | 'value'>[] = []
  try {
    await bus.read({ topic: changelog, handler: (r) => void records.push({ key: r.key, value: r.value }) })
  } catch (error) {
    // The client's own words ("Unknown topic x.") do not say what the operator got wrong.
    if (error instanceof Error && error.message.startsWith('Unknown topic ')) {
      throw new NoChangelog(`no topic ${changelog} on the broker: no orchestrator has run there with this SAGA_TOPIC_PREFIX yet`)
    }
    throw error
  }
  return selectSagas(latestSagas(records), filter, now)
}

export function renderSagaList(list: SagaList): string {
  if (list.sagas.length === 0) return 'no saga matches'
  const lines = [`${'STARTED'.padEnd(24)} ${'STATUS'.padEnd(13)} ${'STEP'.padEnd(18)} ${'ATT'.padEnd(3)} ${'ORDER'.padEnd(36)} REASON`]
  for (const s of list.sagas) {
    lines.push(`${s.started_at.padEnd(24)} ${s.status.padEnd(13)} ${s.step.padEnd(18)} ${String(s.attempt).padEnd(3)} ${s.order_id.padEnd(36)} ${s.reason ?? ''}`.trimEnd())
  }
  if (list.matched > list.sagas.length) lines.push(`… ${list.matched - list.sagas.length} more; raise --limit to see them`)
  return lines.join('\n')
}
