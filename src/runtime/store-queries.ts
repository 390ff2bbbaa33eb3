import type { Statement } from 'better-sqlite3'

import type { Db } from '../db/database.js'

// Unsent outbox rows read per query: the relay pages through a backlog.
const PAGE = 500

type QueryName = 'dueTimers' | 'pending' | 'seen' | 'markSeen' | 'forgetSeen' | 'seenOf' | 'enqueue' | 'unsentLoose' | 'unsentAll' | 'markSent' | 'getState' | 'putState' | 'deleteState' | 'getTimer' | 'setTimer' | 'clearTimer' | 'getPositions' | 'setPosition' | 'syncNormal' | 'syncFull'

/** The statements of a role's file, prepared once. */
export function prepareQueries(s: Db['$client']): Record<QueryName, Statement> {
  // Rows of no partition (an HTTP request) are everybody's; the rest only their owner's. A null
  // scope is every partition (outside a group).
  const inScope = '(@scope IS NULL OR part IS NULL OR part IN (SELECT value FROM json_each(@scope)))'
  const rowCols = 'id, topic, msg_key AS key, value, headers, part, dest_partition AS destPartition'
  return {
    dueTimers: s.prepare(`SELECT key, input, part, due_at AS dueAt FROM timers WHERE due_at <= @now AND ${inScope} ORDER BY due_at LIMIT 200`),
    pending: s.prepare(`SELECT count(*) FROM outbox INDEXED BY outbox_unsent_by_id WHERE sent_at IS NULL AND ${inScope}`).pluck(),
    seen: s.prepare('SELECT 1 FROM processed_messages WHERE message_id = ?').pluck(),
    markSeen: s.prepare('INSERT INTO processed_messages (message_id, processed_at, seen_key, part) VALUES (@id, @at, @key, @part) ON CONFLICT DO NOTHING'),
    forgetSeen: s.prepare('DELETE FROM processed_messages WHERE seen_key = ?'),
    seenOf: s.prepare('SELECT message_id FROM processed_messages WHERE seen_key = ? ORDER BY processed_at').pluck(),
    enqueue: s.prepare('INSERT INTO outbox (topic, msg_key, value, headers, created_at, part, dest_partition, unit) VALUES (@topic, @key, @value, @headers, @at, @part, @dest, @unit)'),
    unsentLoose: s.prepare(`SELECT ${rowCols} FROM outbox INDEXED BY outbox_unsent_by_id WHERE sent_at IS NULL AND part IS NULL ORDER BY id LIMIT ${PAGE}`),
    unsentAll: s.prepare(`SELECT ${rowCols} FROM outbox INDEXED BY outbox_unsent_by_id WHERE sent_at IS NULL ORDER BY id LIMIT ${PAGE}`),
    markSent: s.prepare('UPDATE outbox SET sent_at = @at WHERE id IN (SELECT value FROM json_each(@ids)) AND sent_at IS NULL'),
    getState: s.prepare('SELECT value FROM state WHERE scope = ? AND key = ?').pluck(),
    putState: s.prepare(
      'INSERT INTO state (scope, key, value, updated_at, part) VALUES (@scope, @key, @value, @at, @part) ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, part = excluded.part',
    ),
    deleteState: s.prepare('DELETE FROM state WHERE scope = ? AND key = ?'),
    getTimer: s.prepare('SELECT key, input, part, due_at AS dueAt FROM timers WHERE key = ?'),
    setTimer: s.prepare('INSERT INTO timers (key, due_at, input, part) VALUES (@key, @dueAt, @input, @part) ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, input = excluded.input, part = excluded.part'),
    clearTimer: s.prepare('DELETE FROM timers WHERE key = ?'),
    getPositions: s.prepare('SELECT part, next_offset AS nextOffset FROM positions WHERE topic = ?'),
    setPosition: s.prepare('INSERT INTO positions (topic, part, next_offset) VALUES (@topic, @part, @next) ON CONFLICT (topic, part) DO UPDATE SET next_offset = excluded.next_offset'),
    syncNormal: s.prepare('PRAGMA synchronous = NORMAL'),
    syncFull: s.prepare('PRAGMA synchronous = FULL'),
  }
}
