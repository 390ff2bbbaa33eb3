import type { Db } from '../db/database.js'
import type { Envelope } from '../envelope.js'
import type { TraceHeaders } from '../observe/observer.js'
import type { StateStore } from './role.js'
import { prepareQueries } from './store-queries.js'

/** Changelog keys: one record per state entry, per inbox key (its processed ids) and per timer. */
export const STATE = 's|'
export const SEEN = 'p|'
export const TIMER = 't|'

export interface OutboxRow {
  id: number
  topic: string
  key: string
  value: string | null
  headers: string | null
  part: number | null
  destPartition: number | null
}

/** A row of an owned partition, kept in memory until it is sent: the changelog and offset, not this file, are what a new owner starts from. */
export interface QueuedRow {
  seq: number
  unit: number
  topic: string
  key: string
  value: string | null
  headers: string | null
  part: number
  destPartition: number | null
  /** When it was written, by this host's clock. */
  at: number
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
  /** Where rows of a partition go once their transaction commits, when they are not written to the file. */
  #deliver: ((rows: QueuedRow[]) => void) | undefined
  /** Rows of partitions written by the open transaction, delivered when it commits. */
  #pending: QueuedRow[] = []
  #depth = 0
  #seq = 0
  /** The trace context that the message being handled gives to every message it writes. */
  trace: TraceHeaders | undefined
  readonly fullSync: boolean
  readonly state: StateStore

  constructor(db: Db, changelog: string | undefined, clock: () => number) {
    this.sqlite = db.$client
    this.changelog = changelog ?? ''
    this.#clock = clock
    const s = this.sqlite
    this.#q = prepareQueries(s)
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

  /** The sequence number of the last row of a partition written; every row of a committed transaction is at or below it. */
  get lastSeq(): number {
    return this.#seq
  }

  /**
   * Rows of a partition (outputs, changelog records) are kept in memory from now on and handed to
   * `deliver` once their transaction commits. A role in a group restores a partition from its
   * changelog and re-reads its input from the committed offset on every assignment, so such rows
   * in the file would be thrown away unread; writing them would cost two writes per row for nothing.
   */
  keepPartitionRowsInMemory(deliver: (rows: QueuedRow[]) => void): void {
    this.#deliver = deliver
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
    // Nested calls are savepoints: rows of one that rolls back are dropped with it.
    const start = this.#pending.length
    let result: T
    this.#depth++
    try {
      result = this.sqlite.transaction(work).immediate()
    } catch (error) {
      this.#pending.length = start
      throw error
    } finally {
      this.#depth--
    }
    if (this.#depth === 0 && this.#pending.length > 0) this.#deliver?.(this.#pending.splice(0))
    return result
  }

  /**
   * Writes whose loss on power failure costs nothing commit without a sync of their own; the next
   * durable commit syncs them along (one write-ahead log).
   */
  lightly<T>(work: () => T): T {
    if (!this.fullSync) return work()
    this.#q.syncNormal.run()
    try {
      return work()
    } finally {
      this.#q.syncFull.run()
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
    if (this.#deliver && this.#part !== null) {
      this.#pending.push({ seq: ++this.#seq, unit: this.#unit, topic: row.topic, key: row.key, value: row.value, headers: row.headers, part: this.#part, destPartition: row.dest, at: Date.now() })
      return
    }
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

  /** Rows of no partition (an HTTP request, a command): in a group, the only rows the file keeps. */
  unsentLoose(): OutboxRow[] {
    return this.#q.unsentLoose.all() as OutboxRow[]
  }

  /** Everything waiting, changelog included: a role outside a group publishes it all plainly. */
  unsentAll(): OutboxRow[] {
    return this.#q.unsentAll.all() as OutboxRow[]
  }

  markSent(rows: { id: number }[]): void {
    if (rows.length === 0) return
    this.lightly(() => this.#q.markSent.run({ at: this.#clock(), ids: JSON.stringify(rows.map((r) => r.id)) }))
  }

  pending(scope: string | null): number {
    return this.#q.pending.get({ scope }) as number
  }
}
