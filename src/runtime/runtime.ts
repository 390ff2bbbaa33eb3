import fs from 'node:fs'
import { randomUUID } from 'node:crypto'

import { and, asc, between, eq, isNull, sql } from 'drizzle-orm'
import type { Logger } from 'pino'

import type { Db } from '../db/database.js'
import { outbox, positions, processedMessages, state, timers } from '../db/schema.js'
import { derivedIds, derivedRandom } from './ids.js'
import { parseEnvelope, type Envelope, type Message } from '../envelope.js'
import { FencedError, type ConsumedRecord, type MessageBus, type PartitionWriter, type ProducedRecord, type Subscription } from '../kafka/port.js'
import type { TopicNames } from '../topics.js'
import { traceHeadersOf, type HandlingInput, type RuntimeObserver, type TraceHeaders } from '../observe/observer.js'
import type { DecideContext, Decision, Outcome, RoleHandler, StateStore } from './role.js'

export type { Outcome } from './role.js'
import { waitForBroker } from './broker-wait.js'
import { DEFAULT_BROKER_LOST_AFTER_MS } from '../config.js'

const RELAY_BATCH = 500
// Records handled in one SQLite transaction at most: enough to amortise the commit, few enough
// that the relay and the fetches are not kept waiting behind a long synchronous stretch.
const HANDLE_BATCH = 256
const TIMER_POLL_MS = 100
const RELAY_RETRY_MS = 1000
const STUCK_AFTER_MS = 60_000
// How often a partition's consumed offset rides along in its transaction. Between commits the
// output and the changelog (processed ids included) still commit together, so a new owner that
// starts from an older offset finds the records it re-reads among the processed ids: duplicates,
// not effects. Committing less often spares most transactions two round trips (AddOffsetsToTxn,
// TxnOffsetCommit) and a marker in __consumer_offsets.
const OFFSET_COMMIT_MS = 1000

export interface RuntimeOptions {
  role: RoleHandler
  db: Db
  bus: MessageBus
  topics: TopicNames
  /**
   * The role's compacted changelog. Every state change is written to it, to the partition of the
   * input that caused it, in the same transaction as the role's output; a partition's state is
   * restored from it before the partition is consumed. Absent: state stays in the local file.
   */
  changelog?: string
  log: Logger
  groupId: string
  /** Static group membership (group.instance.id); dynamic membership when absent. */
  instanceId?: string
  crash?: CrashPlan
  clock?: () => number
  /** Replaces the random sequence drawn from each message (tests that force an outcome). */
  random?: () => number
  /**
   * Called when the role cannot go on: a broken database, or the broker unreachable for longer
   * than `brokerLostAfterMs`. Everything the broker does short of that (a closed connection, a
   * leader or coordinator that moved, a fenced partition) is handled here by joining again.
   */
  onFatal?: (error: Error) => void
  /** How long the broker may stay unreachable before `onFatal` (SAGA_BROKER_LOST_AFTER). */
  brokerLostAfterMs?: number
  /** Told when the consumer fails and when it is back, for /healthz and the metrics. */
  onConnection?: (event: ConnectionEvent) => void
  /** Metrics and tracing: told of each message handled and each relay send. */
  observer?: RuntimeObserver
}


export type ConnectionEvent = { kind: 'lost'; reason: string } | { kind: 'back'; downMs: number }

// A subscription whose broker is gone may never finish leaving the group: the coordinator expires it.
const CLOSE_WAIT_MS = 5_000

export type CrashPoint = 'before-commit' | 'after-commit' | 'after-publish'
export const CRASH_POINTS: CrashPoint[] = ['before-commit', 'after-commit', 'after-publish']

/**
 * Test-only: die abruptly (SIGKILL) once, at a chosen point. `onType` is the type of the message
 * being handled (before-commit, after-commit) or being published (after-publish).
 */
export interface CrashPlan {
  at: CrashPoint
  onType?: string
  /** Written before dying, so the restarted process does not crash again. */
  marker: string
  /**
   * SIGKILL (the default) dies; SIGSTOP freezes, so the process becomes a zombie that holds what it
   * committed but did not publish, until a SIGCONT wakes it.
   */
  signal?: 'SIGKILL' | 'SIGSTOP'
}

/** SQLite failures that say nothing about the message: retrying later may succeed. */
const TRANSIENT_SQLITE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|READONLY)/

/** Changelog keys: one record per state entry, per inbox key (its processed ids) and per timer. */
const STATE = 's|'
const SEEN = 'p|'
const TIMER = 't|'

/** A partition this instance owns: its writer, and how far its input has been handled and committed. */
interface Owned {
  writer: PartitionWriter
  ready: boolean
  handled?: bigint
  committed?: bigint
  /** When the offset last went out (ms). */
  offsetAt: number
  flight?: Promise<void>
  again: boolean
  failingSince?: number
}

/**
 * The one I/O shell every role runs in: inbox check → decide → state, inbox row, outbox rows and
 * changelog rows in one synchronous SQLite transaction; a relay publishes them. For a role in a
 * consumer group the relay of each owned partition is a Kafka transaction that also carries the
 * partition's consumed offset, so output, changelog and progress become visible together or not at
 * all, and an instance that lost the partition can no longer publish for it.
 */
export class Runtime {
  readonly #o: RuntimeOptions
  readonly #clock: () => number
  readonly #random: (() => number) | undefined
  #subscription: Subscription | undefined
  #timerLoop: NodeJS.Timeout | undefined
  #relayLoop: NodeJS.Timeout | undefined
  #relaying: Promise<void> | undefined
  #relayAgain = false
  /** Set once the role consumes in a group: from then on output of a partition goes only through its owner's writer. */
  #grouped = false
  #stopping = false
  #rejoining = false
  /** Draining: offsets go out with the next transaction, whatever the interval. */
  #draining = false
  readonly #owned = new Map<number, Owned>()
  /** The partition being handled (null: not tied to one), and the changelog keys it touched. */
  #part: number | null = null
  readonly #touched = new Set<string>()
  /** Numbers each transaction's outbox rows; a single writer per file keeps it increasing. */
  #unit: number
  /** Records received and not yet handled: handled together, in one SQLite transaction. */
  #inbox: ConsumedRecord[] = []
  #flushing = false
  /** While a batch is in its transaction: what to do once it has committed (logs, relays, crash points). */
  #afterCommit: (() => void)[] | null = null
  /** The trace context that the message being handled gives to every message it writes. */
  #trace: TraceHeaders | undefined

  readonly #q
  readonly #store: StateStore
  readonly #fullSync: boolean

  constructor(options: RuntimeOptions) {
    this.#o = options
    this.#clock = options.clock ?? Date.now
    this.#random = options.random
    const db = options.db
    const p = sql.placeholder
    // Rows of no partition (an HTTP request) are everybody's; the rest only their owner's. A null
    // scope is every partition (outside a group).
    const inScope = '(@scope IS NULL OR part IS NULL OR part IN (SELECT value FROM json_each(@scope)))'
    this.#q = {
      dueTimers: db.$client.prepare(`SELECT key, input, part, due_at AS dueAt FROM timers WHERE due_at <= @now AND ${inScope} ORDER BY due_at LIMIT 200`),
      pending: db.$client.prepare(`SELECT count(*) FROM outbox WHERE sent_at IS NULL AND ${inScope}`).pluck(),
      seen: db.select({ id: processedMessages.messageId }).from(processedMessages).where(eq(processedMessages.messageId, p('id'))).prepare(),
      markSeen: db.insert(processedMessages).values({ messageId: p('id'), processedAt: p('at'), seenKey: p('key'), part: p('part') }).onConflictDoNothing().prepare(),
      forgetSeen: db.delete(processedMessages).where(eq(processedMessages.seenKey, p('key'))).prepare(),
      seenOf: db.select({ id: processedMessages.messageId }).from(processedMessages).where(eq(processedMessages.seenKey, p('key'))).orderBy(asc(processedMessages.processedAt)).prepare(),
      enqueue: db
        .insert(outbox)
        .values({ topic: p('topic'), key: p('key'), value: p('value'), headers: p('headers'), createdAt: p('at'), part: p('part'), destPartition: p('dest'), unit: p('unit') })
        .prepare(),
      unsent: db.select().from(outbox).where(isNull(outbox.sentAt)).orderBy(asc(outbox.id)).limit(RELAY_BATCH).prepare(),
      unsentLoose: db.select().from(outbox).where(and(isNull(outbox.sentAt), isNull(outbox.part))).orderBy(asc(outbox.id)).limit(RELAY_BATCH).prepare(),
      // Whole units only: the first RELAY_BATCH rows, and the rest of the last unit they reach into.
      unsentOf: db
        .select()
        .from(outbox)
        .where(
          and(
            isNull(outbox.sentAt),
            eq(outbox.part, p('part')),
            sql`${outbox.unit} <= (SELECT max(unit) FROM (SELECT unit FROM outbox WHERE sent_at IS NULL AND part = ${p('part')} ORDER BY id LIMIT ${RELAY_BATCH}))`,
          ),
        )
        .orderBy(asc(outbox.id))
        .prepare(),
      moreUnsentOf: db.select({ id: outbox.id }).from(outbox).where(and(isNull(outbox.sentAt), eq(outbox.part, p('part')), sql`${outbox.id} > ${p('after')}`)).limit(1).prepare(),
      // Relays of different partitions interleave ids: each marks only its own rows.
      markSent: db.update(outbox).set({ sentAt: sql`${p('at')}` }).where(and(between(outbox.id, p('from'), p('to')), isNull(outbox.sentAt))).prepare(),
      markSentLoose: db.update(outbox).set({ sentAt: sql`${p('at')}` }).where(and(between(outbox.id, p('from'), p('to')), isNull(outbox.sentAt), isNull(outbox.part))).prepare(),
      markSentOf: db.update(outbox).set({ sentAt: sql`${p('at')}` }).where(and(between(outbox.id, p('from'), p('to')), isNull(outbox.sentAt), eq(outbox.part, p('part')))).prepare(),
      getState: db.select({ value: state.value }).from(state).where(and(eq(state.scope, p('scope')), eq(state.key, p('key')))).prepare(),
      putState: db
        .insert(state)
        .values({ scope: p('scope'), key: p('key'), value: p('value'), updatedAt: p('at'), part: p('part') })
        .onConflictDoUpdate({ target: [state.scope, state.key], set: { value: sql`excluded.value`, updatedAt: sql`excluded.updated_at`, part: sql`excluded.part` } })
        .prepare(),
      deleteState: db.delete(state).where(and(eq(state.scope, p('scope')), eq(state.key, p('key')))).prepare(),
      getTimer: db.select().from(timers).where(eq(timers.key, p('key'))).prepare(),
      setTimer: db
        .insert(timers)
        .values({ key: p('key'), dueAt: p('dueAt'), input: p('input'), part: p('part') })
        .onConflictDoUpdate({ target: timers.key, set: { dueAt: sql`excluded.due_at`, input: sql`excluded.input`, part: sql`excluded.part` } })
        .prepare(),
      clearTimer: db.delete(timers).where(eq(timers.key, p('key'))).prepare(),
      getPosition: db.select().from(positions).where(eq(positions.topic, p('topic'))).prepare(),
      setPosition: db
        .insert(positions)
        .values({ topic: p('topic'), part: p('part'), nextOffset: p('next') })
        .onConflictDoUpdate({ target: [positions.topic, positions.part], set: { nextOffset: sql`excluded.next_offset` } })
        .prepare(),
    }
    this.#unit = db.$client.prepare('SELECT COALESCE(MAX(unit), 0) FROM outbox').pluck().get() as number
    this.#fullSync = db.$client.pragma('synchronous', { simple: true }) === 2

    this.#store = {
      get: <T>(scope: string, key: string): T | undefined => {
        const row = this.#q.getState.get({ scope, key })
        return row ? (JSON.parse(row.value) as T) : undefined
      },
      put: (scope: string, key: string, value: unknown): void => {
        this.#q.putState.run({ scope, key, value: JSON.stringify(value), at: this.#clock(), part: this.#part })
        this.#touched.add(`${STATE}${scope}|${key}`)
      },
    }
  }

  get role(): RoleHandler {
    return this.#o.role
  }

  async start(): Promise<void> {
    this.#grouped = Boolean(this.#o.role.consumes[0]) && !this.#o.role.global
    await this.#consume()
    this.#timerLoop = setInterval(() => this.fireDueTimers(), TIMER_POLL_MS)
    this.#relayLoop = setInterval(() => this.relay(), RELAY_RETRY_MS)
    this.relay()
  }

  async #consume(): Promise<void> {
    const [input] = this.#o.role.consumes
    if (input && this.#o.role.global) {
      await this.#followAll(this.#o.topics[input])
    } else if (input) {
      this.#subscription = await this.#o.bus.subscribe({
        groupId: this.#o.groupId,
        topic: this.#o.topics[input],
        ...(this.#o.instanceId ? { instanceId: this.#o.instanceId } : {}),
        ownership: {
          assigned: (writers) => this.#assigned(writers),
          revoked: (partitions) => this.#revoked(partitions),
        },
        handler: (record) => this.#receive(record),
        onError: (error) => void this.#rejoin(error),
      })
    }
  }

  /**
   * The consumer failed: a connection that closed, a broker or coordinator that went away, a
   * partition fenced while still assigned here. Do in the process what a supervisor would do with
   * a fresh one: drop every partition (a new owner, maybe this one, restores it from the
   * changelog), wait for the broker, and join again. Only a broker gone for longer than
   * `brokerLostAfterMs` ends the role.
   */
  async #rejoin(error: Error): Promise<void> {
    if (this.#stopping || this.#rejoining) return
    this.#rejoining = true
    const lostAt = Date.now()
    this.#o.log.warn({ err: error }, 'the consumer failed; leaving and joining again')
    this.#o.onConnection?.({ kind: 'lost', reason: error.message })
    const subscription = this.#subscription
    this.#subscription = undefined
    const partitions = [...this.#owned.keys()]
    if (partitions.length > 0) this.#revoked(partitions)
    await Promise.race([subscription?.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())])
    try {
      // The broker may answer before the group does: a coordinator on a dead node stays in the
      // metadata until the cluster has moved it. Each attempt is a fresh client, fresh metadata.
      await waitForBroker(this.#o.bus, { since: lostAt, lostAfterMs: this.#o.brokerLostAfterMs ?? DEFAULT_BROKER_LOST_AFTER_MS, log: this.#o.log, stopped: () => this.#stopping }, async () => {
        await this.#o.bus.reach()
        await this.#consume()
      })
      if (this.#stopping) {
        // Stopped while joining: stop() may have closed nothing yet.
        await (this.#subscription as Subscription | undefined)?.close()
        return
      }
      this.#o.log.info({ down_ms: Date.now() - lostAt }, 'consuming again')
      this.#o.onConnection?.({ kind: 'back', downMs: Date.now() - lostAt })
    } catch (failure) {
      this.#fatal(failure as Error)
    } finally {
      this.#rejoining = false
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timerLoop)
    clearInterval(this.#relayLoop)
    // Handle nothing more, publish what was handled while the group membership still stands (the
    // offsets travel with it), then leave: the next owner starts where this one committed.
    this.#stopping = true
    await this.drain()
    await this.#subscription?.close()
  }

  /** Partitions owned and restored, in order. */
  ownedPartitions(): number[] {
    return [...this.#owned.entries()].filter(([, o]) => o.ready).map(([p]) => p).sort((a, b) => a - b)
  }

  /** Handles one consumed record. Synchronous: when it returns, the record's effects are committed locally. */
  handleRecord(record: ConsumedRecord): Outcome {
    return this.handleRecords([record])[0]!
  }

  /**
   * Handles records in one SQLite transaction (group commit), each in a savepoint of its own, so a
   * record that fails rolls back alone and is dead-lettered while the others stand. Synchronous:
   * when it returns, every record's effects are committed locally.
   */
  handleRecords(records: ConsumedRecord[]): Outcome[] {
    const after: (() => void)[] = []
    const handled = new Map<number, bigint>()
    this.#afterCommit = after
    let outcomes: Outcome[]
    try {
      // A read model is read again from its topic if power loss takes its last commits (its
      // positions go with them): it need not wait for the disk.
      const commit = this.#o.role.global ? this.#lightly.bind(this) : <T>(work: () => T): T => work()
      outcomes = commit(() => this.#o.db.$client
        .transaction(() =>
          records.map((record): Outcome => {
            const owned = this.#owned.get(record.partition)
            if (this.#grouped && (this.#stopping || !owned?.ready)) return 'not-owned'
            const parsed = parseEnvelope(record.value)
            const outcome = this.#observed({ record, trace: traceHeadersOf(record.headers) }, parsed.ok ? parsed.message.type : undefined, () =>
              parsed.ok ? this.apply(parsed.message, { record }) : this.#deadLetter(record, parsed.reason, positionId(record)),
            )
            if (owned) handled.set(record.partition, record.offset + 1n)
            return outcome
          }),
        )
        .immediate())
    } finally {
      this.#afterCommit = null
    }
    for (const work of after) work()
    for (const [partition, next] of handled) {
      const owned = this.#owned.get(partition)
      if (!owned) continue
      owned.handled = next
      void this.#relayPartition(partition)
    }
    return outcomes
  }

  /** Records that arrive in one turn (a fetch) are handled in the next, together. */
  #receive(record: ConsumedRecord): void {
    this.#inbox.push(record)
    if (this.#flushing) return
    this.#flushing = true
    setImmediate(() => this.#flush())
  }

  #flush(): void {
    const batch = this.#inbox.splice(0, HANDLE_BATCH)
    try {
      if (batch.length > 0) this.handleRecords(batch)
    } catch (error) {
      // Nothing of the batch was committed: the records come again to whoever owns them next.
      this.#inbox.length = 0
      this.#flushing = false
      this.#fatal(error as Error)
      return
    }
    if (this.#inbox.length > 0) setImmediate(() => this.#flush())
    else this.#flushing = false
  }

  /**
   * Writes whose loss on power failure costs nothing commit without a sync of their own; the next
   * durable commit syncs them along (one write-ahead log). A lost mark that rows were sent means
   * they are sent again, and downstream dedupe by message_id drops the copies.
   */
  #lightly<T>(work: () => T): T {
    if (!this.#fullSync) return work()
    const sqlite = this.#o.db.$client
    sqlite.pragma('synchronous = NORMAL')
    try {
      return work()
    } finally {
      sqlite.pragma('synchronous = FULL')
    }
  }

  /** Runs `work` once the enclosing batch has committed; at once outside a batch. */
  #whenCommitted(work: () => void): void {
    if (this.#afterCommit) this.#afterCommit.push(work)
    else work()
  }

  /** Runs one message through inbox, decision, state and outbox, in one transaction. */
  apply(message: Message, source: { record?: ConsumedRecord; timer?: { key: string; part: number | null; dueAt?: number } } = {}): Outcome {
    const sqlite = this.#o.db.$client
    const now = eventTime(source, this.#clock)
    const ctx: DecideContext = { now, newId: derivedIds(message.message_id), random: this.#random ?? derivedRandom(message.message_id) }
    const part = source.record?.partition ?? source.timer?.part ?? null
    let decision: Decision | undefined
    try {
      const outcome = this.#within(part, () =>
        sqlite
          .transaction((): Outcome => {
            if (source.timer) this.#clearTimer(source.timer.key)
            if (source.record && this.#o.role.global) this.#q.setPosition.run({ topic: source.record.topic, part: source.record.partition, next: (source.record.offset + 1n).toString() })
            if (this.#q.seen.get({ id: message.message_id })) {
              this.#writeChangelog(now)
              return 'duplicate'
            }
            decision = this.#o.role.handle(message, this.#store, ctx)
            if (decision.reject) throw new Rejected(decision.reject)
            this.#maybeCrash('before-commit', message.type)
            this.#markSeen(message.message_id, message.order_id, now)
            // Every message names its cause; a timer's cause is the timer message itself, which shows in the log only this way.
            for (const out of decision.messages ?? []) this.#enqueue(this.#o.topics[out.topic], { ...out.envelope, causation_id: out.envelope.causation_id ?? message.message_id }, now)
            if (decision.timer === null) this.#clearTimer(message.order_id)
            // The timer keeps the trace context, so a retry stays in the order's trace.
            // A timer's delay runs from when the input is handled here, on this host's clock: an input
            // handled late (lag, a role back from an outage) must not find its timers already due.
            // Only the local schedule depends on it: the timer's message is handled at the time the
            // decision gave (event_at), so what it causes is the same wherever and whenever it fires.
            else if (decision.timer) {
              const input = { ...decision.timer.message, event_at: decision.timer.dueAt, ...(this.#trace ? { trace_headers: this.#trace } : {}) }
              this.#setTimer(message.order_id, this.#clock() + Math.max(0, decision.timer.dueAt - now), JSON.stringify(input))
            }
            this.#writeChangelog(now)
            return 'processed'
            // IMMEDIATE: take the write lock up front, so a second writer (a replay) waits on the busy
            // timeout instead of failing with SQLITE_BUSY_SNAPSHOT half-way.
          })
          .immediate(),
      )
      if (outcome === 'duplicate') this.#o.log.debug({ message_id: message.message_id, type: message.type, order_id: message.order_id }, 'duplicate ignored')
      if (outcome === 'processed') {
        this.#whenCommitted(() => {
          this.#maybeCrash('after-commit', message.type)
          for (const n of decision?.notices ?? []) this.#o.log[n.level]({ ...n.fields }, n.msg)
          // A consumed record's partition is relayed by handleRecords, once its offset is known too.
          if (decision?.messages?.length && !(this.#grouped && source.record)) this.relay(part)
        })
      }
      return outcome
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      if (TRANSIENT_SQLITE.test(code)) throw error
      const reason = error instanceof Rejected ? error.message : `handler error: ${(error as Error).message}`
      // A timer's message was made by this role; if it cannot be handled, log it rather than loop.
      if (!source.record) {
        // The transaction that deleted the timer rolled back: delete it now, or it fires forever.
        if (source.timer) this.#within(source.timer.part, () => sqlite.transaction(() => {
          this.#clearTimer(source.timer!.key)
          this.#writeChangelog(now)
        })())
        this.#o.log.error({ err: error, message }, 'timer message could not be handled; dropped')
        return 'dead-lettered'
      }
      // Keyed by position, not message_id, so the same message replayed from the dead-letter
      // topic after a fix is handled afresh.
      return this.#deadLetter(source.record, reason, positionId(source.record))
    }
  }

  /**
   * Writes outgoing messages that do not answer a consumed one (an HTTP request, a CLI
   * command) through the outbox, in one transaction with `work`'s own state changes.
   */
  submit(work: (store: StateStore, ctx: DecideContext) => Decision, trace?: TraceHeaders): Decision {
    this.#trace = trace
    const now = this.#clock()
    const ctx: DecideContext = { now, newId: randomUUID, random: this.#random ?? Math.random }
    const decision = this.#within(null, () =>
      this.#o.db.$client
        .transaction(() => {
          const d = work(this.#store, ctx)
          if (d.reject) throw new Rejected(d.reject)
          for (const out of d.messages ?? []) this.#enqueue(this.#o.topics[out.topic], out.envelope, now)
          this.#touched.clear()
          return d
        })
        .immediate(),
    )
    this.relay()
    return decision
  }

  read<T>(scope: string, key: string): T | undefined {
    return this.#store.get<T>(scope, key)
  }

  /**
   * Retention (retention.ts): deletes the rows behind these changelog keys and writes a tombstone
   * for each, in one transaction of the partition, so a restore does not bring them back. False
   * when the partition is not, or no longer, owned and restored here.
   */
  forget(part: number, keys: string[]): boolean {
    if (this.#grouped && (this.#stopping || !this.#owned.get(part)?.ready)) return false
    const now = this.#clock()
    const changelog = this.#o.role.global ? undefined : this.#o.changelog
    this.#within(part, () =>
      this.#o.db.$client
        .transaction(() => {
          for (const key of keys) {
            this.#restoreOne(part, key, null, now)
            if (changelog) this.#q.enqueue.run({ topic: changelog, key, value: null, headers: null, at: now, part, dest: part, unit: this.#unit })
          }
        })
        .immediate(),
    )
    if (this.#owned.has(part)) void this.#relayPartition(part)
    return true
  }

  /** Fires the due timers of the partitions this instance owns (all of them outside a group). */
  fireDueTimers(): number {
    if (this.#stopping) return 0
    const due = this.#q.dueTimers.all({ now: this.#clock(), scope: this.#scope(this.ownedPartitions()) }) as { key: string; input: string; part: number | null; dueAt: number }[]
    let fired = 0
    for (const row of due) {
      const parsed = parseEnvelope(Buffer.from(row.input))
      if (!parsed.ok) {
        this.#within(row.part, () => this.#o.db.$client.transaction(() => {
          this.#clearTimer(row.key)
          this.#writeChangelog(this.#clock())
        })())
        this.#o.log.error({ key: row.key, reason: parsed.reason }, 'unreadable timer dropped')
        continue
      }
      this.#observed({ trace: (parsed.message as { trace_headers?: TraceHeaders }).trace_headers }, parsed.message.type, () => this.apply(parsed.message, { timer: { key: row.key, part: row.part, dueAt: eventAtOf(parsed.message) ?? row.dueAt } }))
      fired++
    }
    return fired
  }

  /**
   * Publishes the outbox. Rows of an owned partition go through that partition's writer; the rest
   * (HTTP requests, a replay, a role outside a group) through plain idempotent sends, in id order.
   */
  relay(part: number | null = null): Promise<void> {
    if (this.#grouped) {
      if (part !== null) return this.#relayPartition(part)
      for (const p of this.#owned.keys()) void this.#relayPartition(p)
    }
    if (this.#relaying) {
      this.#relayAgain = true
      return this.#relaying
    }
    this.#relaying = this.#publishLoose()
      .catch((error: Error) => {
        this.#o.log.warn({ err: error }, 'outbox relay failed; will retry')
      })
      .finally(() => {
        this.#relaying = undefined
        if (this.#relayAgain) {
          this.#relayAgain = false
          void this.relay()
        }
      })
    return this.#relaying
  }

  /** Relays until the outbox is empty and every handled offset is committed, or the deadline passes (the broker may be down). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const busy = (): boolean => this.pendingOutbox() > 0 || [...this.#owned.values()].some((o) => o.handled !== undefined && o.handled !== o.committed)
    this.#draining = true
    try {
      while (busy() && Date.now() < deadline) {
        await Promise.all([this.relay(), ...[...this.#owned.keys()].map((p) => this.#relayPartition(p))])
        if (busy()) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    } finally {
      this.#draining = false
    }
  }

  pendingOutbox(): number {
    return this.#q.pending.get({ scope: this.#scope([...this.#owned.keys()]) }) as number
  }

  /** The partitions a query may touch, as a JSON array; null: all of them (outside a group). */
  #scope(partitions: number[]): string | null {
    return this.#grouped ? JSON.stringify(partitions) : null
  }

  async #publishLoose(): Promise<void> {
    for (;;) {
      this.#relayAgain = false
      const rows = this.#grouped ? this.#q.unsentLoose.all() : this.#q.unsent.all()
      if (rows.length === 0) return
      await this.#sent(rows.map(produced), null, (records) => this.#o.bus.publish(records))
      this.#maybeCrash('after-publish', this.#crashTypeIn(rows))
      const range = { at: this.#clock(), from: rows[0]!.id, to: rows[rows.length - 1]!.id }
      this.#lightly(() => (this.#grouped ? this.#q.markSentLoose.run(range) : this.#q.markSent.run(range)))
    }
  }

  #relayPartition(part: number): Promise<void> {
    const owned = this.#owned.get(part)
    if (!owned?.ready) return Promise.resolve()
    if (owned.flight) {
      owned.again = true
      return owned.flight
    }
    // One turn later, so the rest of a fetched batch joins the same transaction.
    let failed = false
    owned.flight = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#publishPartition(part, owned))
      .catch((error: Error) => {
        failed = true
        if (error instanceof FencedError) {
          // Another instance owns it now; the group will tell us so. Until then, nothing of it is ours.
          this.#o.log.warn({ partition: part, err: error }, 'partition fenced off; it is handled elsewhere now')
          if (this.#owned.get(part) === owned) this.#owned.delete(part)
          return
        }
        this.#o.log.warn({ partition: part, err: error }, 'partition relay failed; will retry')
        // A partition that cannot commit for this long is not coming back by retrying (a consumer
        // that lost its membership, say): stop, and let the supervisor start a fresh member.
        owned.failingSince ??= Date.now()
        if (Date.now() - owned.failingSince > STUCK_AFTER_MS) void this.#rejoin(new Error(`partition ${part} could not commit for ${STUCK_AFTER_MS / 1000} s: ${error.message}`))
      })
      .finally(() => {
        owned.flight = undefined
        // After a failure the relay loop retries, a second later: no tight loop against a sick broker.
        if (!failed && owned.again && this.#owned.get(part) === owned) {
          owned.again = false
          void this.#relayPartition(part)
        }
      })
    return owned.flight
  }

  async #publishPartition(part: number, owned: Owned): Promise<void> {
    for (;;) {
      owned.again = false
      const rows = this.#q.unsentOf.all({ part })
      // The offset covers every message handled so far: it may go only with the last of their rows.
      const complete = rows.length === 0 || !this.#q.moreUnsentOf.get({ part, after: rows[rows.length - 1]!.id })
      const due = this.#draining || Date.now() - owned.offsetAt >= OFFSET_COMMIT_MS
      const offset = complete && due && owned.handled !== undefined && owned.handled !== owned.committed ? owned.handled : undefined
      if (rows.length === 0 && offset === undefined) return
      await this.#sent(rows.map(produced), part, (records) => owned.writer.commit(records, offset))
      if (offset !== undefined) owned.offsetAt = Date.now()
      owned.failingSince = undefined
      this.#maybeCrash('after-publish', this.#crashTypeIn(rows))
      // Revoked meanwhile: the rows went out, and the next owner restores from what they say.
      if (this.#owned.get(part) !== owned) return
      if (rows.length > 0) this.#lightly(() => this.#q.markSentOf.run({ at: this.#clock(), from: rows[0]!.id, to: rows[rows.length - 1]!.id, part }))
      if (offset !== undefined) owned.committed = offset
    }
  }

  async #assigned(writers: PartitionWriter[]): Promise<void> {
    for (const writer of writers) {
      const owned: Owned = { writer, ready: false, again: false, offsetAt: 0 }
      this.#owned.set(writer.partition, owned)
      const restored = await this.#restore(writer.partition)
      if (this.#owned.get(writer.partition) === owned) owned.ready = true
      this.#o.log.info({ partition: writer.partition, ...restored }, 'partition assigned; state restored from the changelog')
    }
    this.relay()
  }

  #revoked(partitions: number[]): void {
    for (const p of partitions) {
      const owned = this.#owned.get(p)
      this.#owned.delete(p)
      // Once its last transaction has settled, forget the partition: a stale copy must not be read
      // (state keyed by something other than an order, like chaos, is read whatever its partition).
      void (owned?.flight ?? Promise.resolve()).finally(() => {
        if (!this.#owned.has(p)) this.#wipe(p)
      })
    }
    this.#o.log.info({ partitions }, 'partitions revoked; their timers stop here')
  }

  #wipe(part: number): void {
    const sqlite = this.#o.db.$client
    if (!sqlite.open) return
    sqlite.transaction(() => {
      for (const table of ['state', 'processed_messages', 'timers', 'outbox']) sqlite.prepare(`DELETE FROM ${table} WHERE part = ?`).run(part)
    })()
  }

  /**
   * Replaces the local copy of a partition's state with the changelog's. The local copy may be
   * ahead (handled here, never committed to Kafka) or behind (another instance owned it since).
   */
  async #restore(part: number): Promise<{ records: number; ms: number }> {
    const started = Date.now()
    const records: { key: string; value: string | null }[] = []
    if (this.#o.changelog) {
      await this.#o.bus.read({ topic: this.#o.changelog, partitions: [part], handler: (r) => void records.push({ key: r.key?.toString('utf8') ?? '', value: r.value ? r.value.toString('utf8') : null }) })
    }
    const sqlite = this.#o.db.$client
    sqlite
      .transaction(() => {
        this.#wipe(part)
        const now = this.#clock()
        for (const { key, value } of records) this.#restoreOne(part, key, value, now)
      })
      .immediate()
    return { records: records.length, ms: Date.now() - started }
  }

  #restoreOne(part: number, key: string, value: string | null, now: number): void {
    if (key.startsWith(STATE)) {
      const rest = key.slice(STATE.length)
      const bar = rest.indexOf('|')
      const [scope, k] = [rest.slice(0, bar), rest.slice(bar + 1)]
      if (value === null) this.#q.deleteState.run({ scope, key: k })
      else this.#q.putState.run({ scope, key: k, value, at: now, part })
    } else if (key.startsWith(SEEN)) {
      const seenKey = key.slice(SEEN.length)
      this.#q.forgetSeen.run({ key: seenKey })
      for (const id of value ? (JSON.parse(value) as string[]) : []) this.#q.markSeen.run({ id, at: now, key: seenKey, part })
    } else if (key.startsWith(TIMER)) {
      const timerKey = key.slice(TIMER.length)
      if (value === null) this.#q.clearTimer.run({ key: timerKey })
      else {
        const t = JSON.parse(value) as { due_at: number; input: string }
        this.#q.setTimer.run({ key: timerKey, dueAt: t.due_at, input: t.input, part })
      }
    }
  }

  /**
   * A role that needs every partition (the api's read model) reads them all itself, from positions
   * kept in its own file: a deleted file reads the topic again from the start.
   */
  async #followAll(topic: string): Promise<void> {
    const ends = await this.#o.bus.endOffsets(topic)
    const known = new Map(this.#q.getPosition.all({ topic }).map((r) => [r.part, BigInt(r.nextOffset)]))
    this.#subscription = await this.#o.bus.tail({
      topic,
      fromOffsets: ends.map((_, p) => known.get(p) ?? 0n),
      handler: (record) => this.#receive(record),
      onError: (error) => void this.#rejoin(error),
    })
  }

  #within<T>(part: number | null, work: () => T): T {
    this.#part = part
    this.#unit++
    this.#touched.clear()
    try {
      return work()
    } finally {
      this.#part = null
      this.#touched.clear()
      this.#trace = undefined
    }
  }

  #markSeen(id: string, key: string, now: number): void {
    this.#q.markSeen.run({ id, at: now, key, part: this.#part })
    this.#touched.add(`${SEEN}${key}`)
  }

  #setTimer(key: string, dueAt: number, input: string): void {
    this.#q.setTimer.run({ key, dueAt, input, part: this.#part })
    this.#touched.add(`${TIMER}${key}`)
  }

  #clearTimer(key: string): void {
    this.#q.clearTimer.run({ key })
    this.#touched.add(`${TIMER}${key}`)
  }

  /** Adds the changelog records for what this transaction touched: each key's value as it stands now. */
  #writeChangelog(now: number): void {
    const changelog = this.#o.changelog
    if (!changelog || this.#part === null || this.#o.role.global) return
    for (const key of this.#touched) {
      let value: string | null = null
      if (key.startsWith(STATE)) {
        const rest = key.slice(STATE.length)
        const bar = rest.indexOf('|')
        value = this.#q.getState.get({ scope: rest.slice(0, bar), key: rest.slice(bar + 1) })?.value ?? null
      } else if (key.startsWith(SEEN)) {
        value = JSON.stringify(this.#q.seenOf.all({ key: key.slice(SEEN.length) }).map((r) => r.id))
      } else if (key.startsWith(TIMER)) {
        const t = this.#q.getTimer.get({ key: key.slice(TIMER.length) })
        value = t ? JSON.stringify({ due_at: t.dueAt, input: t.input }) : null
      }
      this.#q.enqueue.run({ topic: changelog, key, value, headers: null, at: now, part: this.#part, dest: this.#part, unit: this.#unit })
    }
    this.#touched.clear()
  }

  #enqueue(topic: string, envelope: Envelope, now: number): void {
    this.#q.enqueue.run({ topic, key: envelope.order_id, value: JSON.stringify(envelope), headers: this.#trace ? JSON.stringify(this.#trace) : null, at: now, part: this.#part, dest: null, unit: this.#unit })
  }

  #observed(input: HandlingInput, type: string | undefined, work: () => Outcome): Outcome {
    const seen = this.#o.observer?.handling(input)
    this.#trace = seen ? seen.headers : input.trace
    try {
      const outcome = work()
      seen?.end(outcome, type)
      return outcome
    } finally {
      this.#trace = undefined
    }
  }

  async #sent(records: ProducedRecord[], part: number | null, send: (records: ProducedRecord[]) => Promise<void>): Promise<void> {
    const done = this.#o.observer?.sending(records, part)
    try {
      await send(records)
    } catch (error) {
      done?.(error as Error)
      throw error
    }
    done?.()
  }

  #deadLetter(record: ConsumedRecord, reason: string, id: string): Outcome {
    const now = this.#clock()
    const letter = {
      dead_letter_id: randomUUID(),
      reason,
      role: this.#o.role.name,
      source: { topic: record.topic, partition: record.partition, offset: record.offset.toString() },
      key: record.key?.toString('utf8') ?? null,
      headers: record.headers,
      value_base64: record.value?.toString('base64') ?? null,
      dead_lettered_at: new Date(now).toISOString(),
    }
    const outcome = this.#within(record.partition, () =>
      this.#o.db.$client
        .transaction((): Outcome => {
          if (this.#q.seen.get({ id })) return 'duplicate'
          this.#markSeen(id, id, now)
          this.#q.enqueue.run({
            topic: this.#o.topics.dlq,
            key: letter.key ?? `${record.topic}:${record.partition}`,
            value: JSON.stringify(letter),
            headers: JSON.stringify({ 'x-dlq-reason': reason.slice(0, 500), 'x-dlq-role': this.#o.role.name }),
            at: now,
            part: record.partition,
            dest: null,
            unit: this.#unit,
          })
          if (this.#o.role.global) this.#q.setPosition.run({ topic: record.topic, part: record.partition, next: (record.offset + 1n).toString() })
          this.#writeChangelog(now)
          return 'dead-lettered'
        })
        .immediate(),
    )
    if (outcome === 'dead-lettered') {
      this.#whenCommitted(() => {
        this.#o.log.warn({ reason, topic: record.topic, partition: record.partition, offset: record.offset.toString() }, 'message dead-lettered')
        if (!this.#grouped) this.relay(record.partition)
      })
    }
    return outcome
  }

  // Crash points stay on the hot path: with no crash plan (every run but the crash tests) both return on one undefined check.
  #crashTypeIn(rows: { value: string | null }[]): string | undefined {
    const type = this.#o.crash?.onType
    if (!this.#o.crash || this.#o.crash.at !== 'after-publish') return undefined
    if (!type) return ''
    return rows.some((r) => r.value?.includes(`"${type}"`)) ? type : undefined
  }

  #maybeCrash(point: CrashPoint, type: string | undefined): void {
    const plan = this.#o.crash
    if (!plan || plan.at !== point || type === undefined || (plan.onType && plan.onType !== type) || fs.existsSync(plan.marker)) return
    fs.writeFileSync(plan.marker, `${point} ${type}\n`)
    const signal = plan.signal ?? 'SIGKILL'
    this.#o.log.warn({ crash: point, type, signal }, signal === 'SIGSTOP' ? 'crash point reached; freezing' : 'crash point reached; dying abruptly')
    process.kill(process.pid, signal)
  }

  #fatal(error: Error): void {
    this.#o.log.fatal({ err: error }, 'consumer failed')
    this.#o.onFatal?.(error)
  }
}

class Rejected extends Error {}

/**
 * The time a message is handled at, as its decision sees it: the consumed record's timestamp, or a
 * timer's due time. Taken from the input and not the wall clock, so handling the same input from the
 * same state again gives the same messages, bodies included. The wall clock only where the input
 * carries no time (a record without a timestamp, an HTTP request).
 */
/** The time a timer's decision gave it; absent in timers written before it was recorded. */
function eventAtOf(message: Message): number | undefined {
  const at = (message as { event_at?: unknown }).event_at
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined
}

function eventTime(source: { record?: ConsumedRecord; timer?: { dueAt?: number } }, clock: () => number): number {
  if (source.record && source.record.timestamp > 0n) return Number(source.record.timestamp)
  if (source.timer?.dueAt !== undefined) return source.timer.dueAt
  return clock()
}

function positionId(record: ConsumedRecord): string {
  return `record:${record.topic}:${record.partition}:${record.offset}`
}

function produced(row: { topic: string; key: string; value: string | null; headers: string | null; destPartition: number | null }): ProducedRecord {
  return {
    topic: row.topic,
    key: row.key,
    value: row.value,
    ...(row.headers ? { headers: JSON.parse(row.headers) as Record<string, string> } : {}),
    ...(row.destPartition !== null ? { partition: row.destPartition } : {}),
  }
}
