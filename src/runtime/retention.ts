import type { Message } from '../envelope.js'
import type { TopicRetention } from '../kafka/port.js'

// The retention rule as pure decisions: which of a partition's entries may be forgotten, how long
// sent outbox rows stay, and which messages are too old to trust the inbox with. The pruner and
// `sagactl gc` do the I/O; nothing here reads a clock or a database.

/**
 * Everything a role keeps about one key of one partition (usually an order): its state rows, the
 * ids of the messages handled for it, and its pending timer. Forgotten together or not at all,
 * because the changelog restores them together.
 */
export interface Entry {
  key: string
  states: { scope: string; value: unknown; updatedAt: number }[]
  /** processed_at of the newest message handled for this key. */
  lastProcessedAt: number | undefined
  hasTimer: boolean
}

export interface RetentionRule {
  retentionMs: number
  /**
   * Whether one state row is done with, e.g. a saga that has finished. Absent: every row is,
   * and only time decides (participants and the notifier cannot tell when an order is over).
   */
  settled?: (scope: string, value: unknown, now: number) => boolean
}

export type Verdict = { forget: true } | { forget: false; why: 'recent' | 'timer' | 'unsettled' }

/** The last time anything happened to the entry, on this instance. */
export function lastActivity(entry: Entry): number {
  return Math.max(entry.lastProcessedAt ?? -Infinity, ...entry.states.map((s) => s.updatedAt))
}

/**
 * An entry may be forgotten once nothing can need it: no timer is pending (the saga still waits),
 * every state row is settled (finished), and nothing has touched it for SAGA_RETENTION. A
 * duplicate of one of its messages can then only come from a source older than SAGA_RETENTION,
 * which the roles refuse to act on (`tooOldToTrust`).
 */
export function verdict(entry: Entry, now: number, rule: RetentionRule): Verdict {
  if (entry.hasTimer) return { forget: false, why: 'timer' }
  if (now - lastActivity(entry) < rule.retentionMs) return { forget: false, why: 'recent' }
  if (rule.settled && !entry.states.every((s) => rule.settled!(s.scope, s.value, now))) return { forget: false, why: 'unsettled' }
  return { forget: true }
}

/** Changelog keys, as the runtime writes them: `s|<scope>|<key>`, `p|<key>`, `t|<key>`. */
export const changelogKey = {
  state: (scope: string, key: string) => `s|${scope}|${key}`,
  seen: (key: string) => `p|${key}`,
  timer: (key: string) => `t|${key}`,
}

/**
 * The tombstones that forget an entry in the changelog. No `t|` key: a forgettable entry has no
 * timer, and clearing a timer already wrote its tombstone.
 */
export function tombstoneKeys(entry: Entry): string[] {
  return [...entry.states.map((s) => changelogKey.state(s.scope, entry.key)), ...(entry.lastProcessedAt !== undefined ? [changelogKey.seen(entry.key)] : [])]
}

/**
 * Sent outbox rows are not needed once sent; they stay a while so `bench` can read how long
 * each waited for the relay (created_at → sent_at), and a person can look at what just went out.
 */
export const SENT_OUTBOX_KEEP_MAX_MS = 10 * 60_000

export function sentOutboxKeepMs(retentionMs: number): number {
  return Math.min(retentionMs, SENT_OUTBOX_KEEP_MAX_MS)
}

/** How often the pruner runs: often enough that nothing waits much past its retention, at most once a minute. */
export function pruneIntervalMs(retentionMs: number): number {
  return Math.max(1_000, Math.min(60_000, Math.floor(retentionMs / 4)))
}

/**
 * A message made longer than SAGA_RETENTION ago may repeat one whose entry was forgotten: its
 * processed id is gone, so the inbox can no longer say "duplicate". Roles do not start anything
 * new on such a message (a saga, an effect, a read-model row). Without `occurred_at` there is no
 * age to judge, and the message is trusted as before.
 */
export function tooOldToTrust(message: Message, now: number, retentionMs: number | undefined): boolean {
  if (retentionMs === undefined || !message.occurred_at) return false
  const at = Date.parse(message.occurred_at)
  return !Number.isNaN(at) && now - at > retentionMs
}


/**
 * SAGA_RETENTION must cover the input topics' retention: otherwise a record still on a topic (read
 * again after a reset of offsets, or by a replay) can repeat a message whose id was forgotten.
 */
export function retentionWarnings(retentionMs: number, topics: TopicRetention[]): string[] {
  return topics
    .filter((t) => t.retentionMs < 0 || t.retentionMs > retentionMs)
    .map((t) =>
      t.retentionMs < 0
        ? `topic "${t.topic}" keeps records for ever (retention.ms=-1): a record read again after SAGA_RETENTION (${retentionMs} ms) is no longer recognised as a duplicate unless it is older than SAGA_RETENTION`
        : `SAGA_RETENTION (${retentionMs} ms) is shorter than retention.ms of topic "${t.topic}" (${t.retentionMs} ms): a record read again from it after SAGA_RETENTION is recognised as a duplicate only by its age`,
    )
}
