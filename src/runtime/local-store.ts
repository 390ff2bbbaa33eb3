import { sql } from 'drizzle-orm'

import type { Db } from '../db/database.js'
import { positions, processedMessages, state, timers } from '../db/schema.js'
import type { Envelope } from '../envelope.js'
import type { TraceHeaders } from '../observe/observer.js'
import type { StateStore } from './role.js'

/** Changelog keys: one record per state entry, per inbox key (its processed ids) and per timer. */
export const STATE = 's|'
export const SEEN = 'p|'
export const TIMER = 't|'

const PAGE = 500

export interface OutboxRow {
  id: number
  topic: string
  key: string
  value: string | null
  headers: string | null
  part: number | null
  destPartition: number | null
}

export interface TimerRow {
  key: string
  input: string
  part: number | null
  dueAt: number
}

/**
 * A role's SQLite file: state, processed ids, timers and the outbox, and the transaction context
 * that ties them together. Every write inside `within` is tagged with the partition being handled
 * and remembered as a changelog key, so `writeChangelog` can add the records that let the next
 * owner of the partition restore exactly this.
 */
export class LocalStore {
  readonly sqlite: Db['$client']
  /** The changelog topic; '' when the role keeps its state only here. */
  readonly changelog: string
  readonly #q
  readonly #clock: () => number
  /** The partition being handled (null: not tied to one), and the changelog keys it touched. */
  #part: number | null = null
  readonly #touched = new Set<string>()
  /** Numbers each transaction's outbox rows; a single writer per file keeps it increasing. */
  #unit: number
  /** The highest outbox id written so far. */
  #lastId: number
  /** The trace context that the message being handled gives to every message it writes. */
  trace: TraceHeaders | undefined
  readonly fullSync: boolean
  readonly state: StateStore

  constructor(db: Db, changelog: string | undefined, clock: () => number) {
    this.sqlite = db.$client
    this.changelog = changelog ?? ''
    this.#clock = clock
    const s = this.sqlite
    const p = sql.placeholder
    // Rows of no partition (an HTTP request) are everybody's; the rest only their owner's. A null
    // scope is every partition (outside a group).
    const inScope = '(@scope IS NULL OR part IS NULL OR part IN (SELECT value FROM json_each(@scope)))'
    const rowCols = 'id, topic, msg_key AS key, value, headers, part, dest_partition AS destPartition'
    this.#q = {
      dueTimers: s.prepare(`SELECT key, input, part, due_at AS dueAt FROM timers WHERE due_at <= @now AND ${inScope} ORDER BY due_at LIMIT 200`),
      pending: s.prepare(`SELECT count(*) FROM outbox WHERE sent_at IS NULL AND ${inScope}`).pluck(),
      seen: s.prepare('SELECT 1 FROM processed_messages WHERE message_id = ?').pluck(),
      markSeen: db.insert(processedMessages).values({ messageId: p('id'), processedAt: p('at'), seenKey: p('key'), part: p('part') }).onConflictDoNothing().prepare(),
      forgetSeen: s.prepare('DELETE FROM processed_messages WHERE seen_key = ?'),
      seenOf: s.prepare('SELECT message_id FROM processed_messages WHERE seen_key = ? ORDER BY processed_at').pluck(),
      enqueue: s.prepare('INSERT INTO outbox (topic, msg_key, value, headers, created_at, part, dest_partition, unit) VALUES (@topic, @key, @value, @headers, @at, @part, @dest, @unit)'),
      // Outputs (every topic but the changelog) of the partitions in scope and of none, oldest first.
      unsentOutputs: s.prepare(`SELECT ${rowCols} FROM outbox WHERE sent_at IS NULL AND topic != @changelog AND ${inScope} ORDER BY id LIMIT ${PAGE}`),
      unsentAll: s.prepare(`SELECT ${rowCols} FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ${PAGE}`),
      firstUnsentOutput: s.prepare('SELECT min(id) FROM outbox WHERE sent_at IS NULL AND part = @part AND topic != @changelog').pluck(),
      // Whole units only: the first PAGE rows below the bound, and the rest of the last unit they reach into.
      unsentChangelog: s.prepare(
        `SELECT ${rowCols} FROM outbox WHERE sent_at IS NULL AND part = @part AND topic = @changelog AND id < @below
           AND unit <= (SELECT max(unit) FROM (SELECT unit FROM outbox WHERE sent_at IS NULL AND part = @part AND topic = @changelog AND id < @below ORDER BY id LIMIT ${PAGE}))
         ORDER BY id`,
      ),
      markSent: s.prepare('UPDATE outbox SET sent_at = @at WHERE id IN (SELECT value FROM json_each(@ids)) AND sent_at IS NULL'),
      getState: s.prepare('SELECT value FROM state WHERE scope = ? AND key = ?').pluck(),
      putState: db
        .insert(state)
        .values({ scope: p('scope'), key: p('key'), value: p('value'), updatedAt: p('at'), part: p('part') })
        .onConflictDoUpdate({ target: [state.scope, state.key], set: { value: sql`excluded.value`, updatedAt: sql`excluded.updated_at`, part: sql`excluded.part` } })
        .prepare(),
      deleteState: s.prepare('DELETE FROM state WHERE scope = ? AND key = ?'),
      getTimer: s.prepare('SELECT key, input, part, due_at AS dueAt FROM timers WHERE key = ?'),
      setTimer: db
        .insert(timers)
        .values({ key: p('key'), dueAt: p('dueAt'), input: p('input'), part: p('part') })
        .onConflictDoUpdate({ target: timers.key, set: { dueAt: sql`excluded.due_at`, input: sql`excluded.input`, part: sql`excluded.part` } })
        .prepare(),
      clearTimer: s.prepare('DELETE FROM timers WHERE key = ?'),
      getPositions: s.prepare('SELECT part, next_offset AS nextOffset FROM positions WHERE topic = ?'),
      setPosition: db
        .insert(positions)
        .values({ topic: p('topic'), part: p('part'), nextOffset: p('next') })
        .onConflictDoUpdate({ target: [positions.topic, positions.part], set: { nextOffset: sql`excluded.next_offset` } })
        .prepare(),
    }
    this.#unit = s.prepare('SELECT COALESCE(MAX(unit), 0) FROM outbox').pluck().get() as number
    this.#lastId = s.prepare('SELECT COALESCE(MAX(id), 0) FROM outbox').pluck().get() as number
    this.fullSync = s.pragma('synchronous', { simple: true }) === 2
    this.state = {
      get: <T>(scope: string, key: string): T | undefined => {
        const value = this.#q.getState.get(scope, key) as string | undefined
        return value === undefined ? undefined : (JSON.parse(value) as T)
      },
      put: (scope: string, key: string, value: unknown): void => {
        this.#q.putState.run({ scope, key, value: JSON.stringify(value), at: this.#clock(), part: this.#part })
        this.#touched.add(`${STATE}${scope}|${key}`)
      },
    }
  }

  get part(): number | null {
    return this.#part
  }

  /** The highest outbox id written so far: every row of a transaction that has returned is at or below it. */
  get lastId(): number {
    return this.#lastId
  }

  /** Opens a unit of work tied to a partition (null: to none); the caller runs its SQLite transaction inside. */
  within<T>(part: number | null, work: () => T): T {
    this.#part = part
    this.#unit++
    this.#touched.clear()
    try {
      return work()
    } finally {
      this.#part = null
      this.#touched.clear()
      this.trace = undefined
    }
  }

  /** Runs `work` in one IMMEDIATE transaction: the write lock up front, so a second writer waits on the busy timeout instead of failing half-way. */
  transaction<T>(work: () => T): T {
    return this.sqlite.transaction(work).immediate()
  }

  /**
   * Writes whose loss on power failure costs nothing commit without a sync of their own; the next
   * durable commit syncs them along (one write-ahead log).
   */
  lightly<T>(work: () => T): T {
    if (!this.fullSync) return work()
    this.sqlite.pragma('synchronous = NORMAL')
    try {
      return work()
    } finally {
      this.sqlite.pragma('synchronous = FULL')
    }
  }

  seen(id: string): boolean {
    return this.#q.seen.get(id) !== undefined
  }

  markSeen(id: string, key: string, now: number): void {
    this.#q.markSeen.run({ id, at: now, key, part: this.#part })
    this.#touched.add(`${SEEN}${key}`)
  }

  timer(key: string): TimerRow | undefined {
    return this.#q.getTimer.get(key) as TimerRow | undefined
  }

  setTimer(key: string, dueAt: number, input: string): void {
    this.#q.setTimer.run({ key, dueAt, input, part: this.#part })
    this.#touched.add(`${TIMER}${key}`)
  }

  clearTimer(key: string): void {
    this.#q.clearTimer.run(key)
    this.#touched.add(`${TIMER}${key}`)
  }

  dueTimers(now: number, scope: string | null): TimerRow[] {
    return this.#q.dueTimers.all({ now, scope }) as TimerRow[]
  }

  positions(topic: string): Map<number, bigint> {
    return new Map((this.#q.getPositions.all(topic) as { part: number; nextOffset: string }[]).map((r) => [r.part, BigInt(r.nextOffset)]))
  }

  setPosition(topic: string, part: number, next: bigint): void {
    this.#q.setPosition.run({ topic, part, next: next.toString() })
  }

  enqueue(topic: string, envelope: Envelope, now: number): void {
    this.enqueueRaw({ topic, key: envelope.order_id, value: JSON.stringify(envelope), headers: this.trace ? JSON.stringify(this.trace) : null, at: now, dest: null })
  }

  enqueueRaw(row: { topic: string; key: string; value: string | null; headers: string | null; at: number; dest: number | null }): void {
    this.#lastId = Number(this.#q.enqueue.run({ ...row, part: this.#part, unit: this.#unit }).lastInsertRowid)
  }

  /** Adds the changelog records for what this unit touched: each key's value as it stands now. */
  writeChangelog(now: number): void {
    if (!this.changelog || this.#part === null) {
      this.#touched.clear()
      return
    }
    for (const key of this.#touched) this.enqueueRaw({ topic: this.changelog, key, value: this.#valueOf(key), headers: null, at: now, dest: this.#part })
    this.#touched.clear()
  }

  #valueOf(key: string): string | null {
    if (key.startsWith(STATE)) {
      const rest = key.slice(STATE.length)
      const bar = rest.indexOf('|')
      return (this.#q.getState.get(rest.slice(0, bar), rest.slice(bar + 1)) as string | undefined) ?? null
    }
    if (key.startsWith(SEEN)) return JSON.stringify(this.#q.seenOf.all(key.slice(SEEN.length)))
    if (key.startsWith(TIMER)) {
      const t = this.timer(key.slice(TIMER.length))
      return t ? JSON.stringify({ due_at: t.dueAt, input: t.input }) : null
    }
    return null
  }

  /** Puts one changelog record back into the tables (null: deletes what the key names). */
  restoreOne(part: number, key: string, value: string | null, now: number): void {
    if (key.startsWith(STATE)) {
      const rest = key.slice(STATE.length)
      const bar = rest.indexOf('|')
      const [scope, k] = [rest.slice(0, bar), rest.slice(bar + 1)]
      if (value === null) this.#q.deleteState.run(scope, k)
      else this.#q.putState.run({ scope, key: k, value, at: now, part })
    } else if (key.startsWith(SEEN)) {
      const seenKey = key.slice(SEEN.length)
      this.#q.forgetSeen.run(seenKey)
      for (const id of value ? (JSON.parse(value) as string[]) : []) this.#q.markSeen.run({ id, at: now, key: seenKey, part })
    } else if (key.startsWith(TIMER)) {
      const timerKey = key.slice(TIMER.length)
      if (value === null) this.#q.clearTimer.run(timerKey)
      else {
        const t = JSON.parse(value) as { due_at: number; input: string }
        this.#q.setTimer.run({ key: timerKey, dueAt: t.due_at, input: t.input, part })
      }
    }
  }

  /** Replaces everything of a partition with these changelog records, in one transaction. */
  restore(part: number, records: { key: string; value: string | null }[]): void {
    this.transaction(() => {
      this.wipe(part)
      const now = this.#clock()
      for (const { key, value } of records) this.restoreOne(part, key, value, now)
    })
  }

  wipe(part: number): void {
    if (!this.sqlite.open) return
    this.sqlite.transaction(() => {
      for (const table of ['state', 'processed_messages', 'timers', 'outbox']) this.sqlite.prepare(`DELETE FROM ${table} WHERE part = ?`).run(part)
    })()
  }

  /** Outputs waiting to go out: the partitions in scope (a JSON array; null: all) and rows of none. */
  unsentOutputs(scope: string | null): OutboxRow[] {
    return this.#q.unsentOutputs.all({ scope, changelog: this.changelog }) as OutboxRow[]
  }

  /** Everything waiting, changelog included: a role outside a group publishes it all plainly. */
  unsentAll(): OutboxRow[] {
    return this.#q.unsentAll.all() as OutboxRow[]
  }

  /** The oldest output of the partition not yet acknowledged; undefined when all are. */
  firstUnsentOutput(part: number): number | undefined {
    return (this.#q.firstUnsentOutput.get({ part, changelog: this.changelog }) as number | null) ?? undefined
  }

  /** The partition's changelog rows below `below`, in whole units, and whether that is all of them. */
  unsentChangelog(part: number, below: number): { rows: OutboxRow[]; complete: boolean } {
    const rows = this.#q.unsentChangelog.all({ part, below, changelog: this.changelog }) as OutboxRow[]
    return { rows, complete: rows.length < PAGE }
  }

  markSent(rows: { id: number }[]): void {
    if (rows.length === 0) return
    this.lightly(() => this.#q.markSent.run({ at: this.#clock(), ids: JSON.stringify(rows.map((r) => r.id)) }))
  }

  pending(scope: string | null): number {
    return this.#q.pending.get({ scope }) as number
  }
}
