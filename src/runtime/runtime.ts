import fs from 'node:fs'
import { randomUUID } from 'node:crypto'

import { and, asc, eq, isNull, lte, sql, between } from 'drizzle-orm'
import type { Logger } from 'pino'

import type { Db } from '../db/database.js'
import { journal, outbox, processedMessages, state, timers } from '../db/schema.js'
import { derivedIds } from './ids.js'
import { parseEnvelope, typeOf, type Envelope, type Message } from '../envelope.js'
import type { ConsumedRecord, MessageBus, Subscription } from '../kafka/port.js'
import type { TopicNames } from '../topics.js'
import type { DecideContext, Decision, RoleHandler, StateStore } from './role.js'

const RELAY_BATCH = 500
const TIMER_POLL_MS = 100
const RELAY_RETRY_MS = 1000

export interface RuntimeOptions {
  role: RoleHandler
  db: Db
  bus: MessageBus
  topics: TopicNames
  log: Logger
  groupId: string
  instanceId?: string
  crash?: CrashPlan
  clock?: () => number
  random?: () => number
  /** Called when consuming cannot go on (a failed commit, a broken database). */
  onFatal?: (error: Error) => void
}

export type Outcome = 'processed' | 'duplicate' | 'dead-lettered'

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
}

/** SQLite failures that say nothing about the message: retrying later may succeed. */
const TRANSIENT_SQLITE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|READONLY)/

function attemptOf(envelope: Envelope): number | null {
  const attempt = envelope.payload?.attempt
  return typeof attempt === 'number' ? attempt : null
}

/**
 * The one I/O shell every role runs in: inbox check → decide → state, inbox row and outbox rows
 * in one synchronous SQLite transaction → offset commit; a relay publishes the outbox.
 */
export class Runtime {
  readonly #o: RuntimeOptions
  readonly #clock: () => number
  readonly #random: () => number
  #subscription: Subscription | undefined
  #timerLoop: NodeJS.Timeout | undefined
  #relayLoop: NodeJS.Timeout | undefined
  #relaying: Promise<void> | undefined
  #relayAgain = false

  readonly #q
  readonly #store: StateStore

  constructor(options: RuntimeOptions) {
    this.#o = options
    this.#clock = options.clock ?? Date.now
    this.#random = options.random ?? Math.random
    const db = options.db
    const p = sql.placeholder
    this.#q = {
      seen: db.select({ id: processedMessages.messageId }).from(processedMessages).where(eq(processedMessages.messageId, p('id'))).prepare(),
      markSeen: db.insert(processedMessages).values({ messageId: p('id'), processedAt: p('at') }).prepare(),
      enqueue: db.insert(outbox).values({ topic: p('topic'), key: p('key'), value: p('value'), headers: p('headers'), createdAt: p('at') }).prepare(),
      unsent: db.select().from(outbox).where(isNull(outbox.sentAt)).orderBy(asc(outbox.id)).limit(RELAY_BATCH).prepare(),
      markSent: db.update(outbox).set({ sentAt: sql`${p('at')}` }).where(and(between(outbox.id, p('from'), p('to')), isNull(outbox.sentAt))).prepare(),
      getState: db.select({ value: state.value }).from(state).where(and(eq(state.scope, p('scope')), eq(state.key, p('key')))).prepare(),
      putState: db
        .insert(state)
        .values({ scope: p('scope'), key: p('key'), value: p('value'), updatedAt: p('at') })
        .onConflictDoUpdate({ target: [state.scope, state.key], set: { value: sql`excluded.value`, updatedAt: sql`excluded.updated_at` } })
        .prepare(),
      setTimer: db
        .insert(timers)
        .values({ key: p('key'), dueAt: p('dueAt'), input: p('input') })
        .onConflictDoUpdate({ target: timers.key, set: { dueAt: sql`excluded.due_at`, input: sql`excluded.input` } })
        .prepare(),
      clearTimer: db.delete(timers).where(eq(timers.key, p('key'))).prepare(),
      dueTimers: db.select().from(timers).where(lte(timers.dueAt, p('now'))).orderBy(asc(timers.dueAt)).limit(200).prepare(),
      record: db
        .insert(journal)
        .values({
          messageId: p('messageId'),
          orderId: p('orderId'),
          sagaId: p('sagaId'),
          direction: p('direction'),
          topic: p('topic'),
          type: p('type'),
          attempt: p('attempt'),
          at: p('at'),
          envelope: p('envelope'),
        })
        .onConflictDoNothing()
        .prepare(),
    }
    this.#store = {
      get: <T>(scope: string, key: string): T | undefined => {
        const row = this.#q.getState.get({ scope, key })
        return row ? (JSON.parse(row.value) as T) : undefined
      },
      put: (scope: string, key: string, value: unknown): void => {
        this.#q.putState.run({ scope, key, value: JSON.stringify(value), at: this.#clock() })
      },
    }
  }

  get role(): RoleHandler {
    return this.#o.role
  }

  async start(): Promise<void> {
    const topics = this.#o.role.consumes.map((t) => this.#o.topics[t])
    if (topics.length > 0) {
      this.#subscription = await this.#o.bus.subscribe({
        groupId: this.#o.groupId,
        topics,
        ...(this.#o.instanceId ? { instanceId: this.#o.instanceId } : {}),
        handler: (record) => {
          this.handleRecord(record)
        },
        onError: (error) => this.#fatal(error),
      })
    }
    this.#timerLoop = setInterval(() => this.fireDueTimers(), TIMER_POLL_MS)
    this.#relayLoop = setInterval(() => this.relay(), RELAY_RETRY_MS)
    this.relay()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timerLoop)
    clearInterval(this.#relayLoop)
    await this.#subscription?.close()
    // Publish what the last messages produced, so a clean stop leaves an empty outbox.
    await this.drain()
  }

  /** Handles one consumed record. Synchronous: when it returns, the record's effects are committed. */
  handleRecord(record: ConsumedRecord): Outcome {
    const parsed = parseEnvelope(record.value)
    if (!parsed.ok) return this.#deadLetter(record, parsed.reason, positionId(record))
    return this.apply(parsed.message, { record })
  }

  /** Runs one message through inbox, decision, state and outbox, in one transaction. */
  apply(message: Message, source: { record?: ConsumedRecord; timerKey?: string } = {}): Outcome {
    const sqlite = this.#o.db.$client
    const now = this.#clock()
    const ctx: DecideContext = { now, newId: derivedIds(message.message_id), random: this.#random }
    let decision: Decision | undefined
    try {
      const outcome = sqlite.transaction((): Outcome => {
        if (source.timerKey) this.#q.clearTimer.run({ key: source.timerKey })
        if (this.#q.seen.get({ id: message.message_id })) return 'duplicate'
        decision = this.#o.role.handle(message, this.#store, ctx)
        if (decision.reject) throw new Rejected(decision.reject)
        this.#maybeCrash('before-commit', message.type)
        this.#q.markSeen.run({ id: message.message_id, at: now })
        if (this.#o.role.journal) {
          this.#journal(message, source.timerKey ? 'timer' : 'in', source.record?.topic ?? 'timer', now)
        }
        for (const out of decision.messages ?? []) this.#enqueue(this.#o.topics[out.topic], out.envelope, now)
        if (decision.timer === null) this.#q.clearTimer.run({ key: message.order_id })
        else if (decision.timer) {
          this.#q.setTimer.run({ key: message.order_id, dueAt: decision.timer.dueAt, input: JSON.stringify(decision.timer.message) })
        }
        return 'processed'
        // IMMEDIATE: take the write lock up front, so a second writer (a replay) waits on the busy
        // timeout instead of failing with SQLITE_BUSY_SNAPSHOT half-way.
      }).immediate()
      if (outcome === 'duplicate') this.#o.log.debug({ message_id: message.message_id, type: message.type, order_id: message.order_id }, 'duplicate ignored')
      if (outcome === 'processed') {
        this.#maybeCrash('after-commit', message.type)
        for (const n of decision?.notices ?? []) this.#o.log[n.level]({ ...n.fields }, n.msg)
        if (decision?.messages?.length) this.relay()
      }
      return outcome
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      if (TRANSIENT_SQLITE.test(code)) throw error
      const reason = error instanceof Rejected ? error.message : `handler error: ${(error as Error).message}`
      // A timer's message was made by this role; if it cannot be handled, log it rather than loop.
      if (!source.record) {
        // The transaction that deleted the timer rolled back: delete it now, or it fires forever.
        if (source.timerKey) this.#q.clearTimer.run({ key: source.timerKey })
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
  submit(work: (store: StateStore, ctx: DecideContext) => Decision): Decision {
    const now = this.#clock()
    const ctx: DecideContext = { now, newId: randomUUID, random: this.#random }
    const decision = this.#o.db.$client.transaction(() => {
      const d = work(this.#store, ctx)
      if (d.reject) throw new Rejected(d.reject)
      for (const out of d.messages ?? []) this.#enqueue(this.#o.topics[out.topic], out.envelope, now)
      return d
    }).immediate()
    this.relay()
    return decision
  }

  read<T>(scope: string, key: string): T | undefined {
    return this.#store.get<T>(scope, key)
  }

  fireDueTimers(): number {
    let fired = 0
    for (const row of this.#q.dueTimers.all({ now: this.#clock() })) {
      const parsed = parseEnvelope(Buffer.from(row.input))
      if (!parsed.ok) {
        this.#q.clearTimer.run({ key: row.key })
        this.#o.log.error({ key: row.key, reason: parsed.reason }, 'unreadable timer dropped')
        continue
      }
      this.apply(parsed.message, { timerKey: row.key })
      fired++
    }
    return fired
  }

  /** Publishes the outbox in id order. Single-flight: calls during a pass coalesce into one more pass. */
  relay(): Promise<void> {
    if (this.#relaying) {
      this.#relayAgain = true
      return this.#relaying
    }
    this.#relaying = this.#publishPending()
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

  /** Relays until the outbox is empty, or the deadline passes (the broker may be down). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.pendingOutbox() > 0 && Date.now() < deadline) {
      await this.relay()
      if (this.pendingOutbox() > 0) await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  async #publishPending(): Promise<void> {
    for (;;) {
      this.#relayAgain = false
      const rows = this.#q.unsent.all()
      if (rows.length === 0) return
      await this.#o.bus.publish(
        rows.map((r) => ({ topic: r.topic, key: r.key, value: r.value, ...(r.headers ? { headers: JSON.parse(r.headers) as Record<string, string> } : {}) })),
      )
      const types = this.#o.crash?.onType ? rows.map((r) => r.value) : []
      this.#maybeCrash('after-publish', types.find((v) => v.includes(`"${this.#o.crash?.onType}"`)) ? this.#o.crash?.onType : undefined)
      this.#q.markSent.run({ at: this.#clock(), from: rows[0]!.id, to: rows[rows.length - 1]!.id })
    }
  }

  pendingOutbox(): number {
    return this.#o.db.$client.prepare('SELECT count(*) FROM outbox WHERE sent_at IS NULL').pluck().get() as number
  }

  #enqueue(topic: string, envelope: Envelope, now: number): void {
    this.#q.enqueue.run({ topic, key: envelope.order_id, value: JSON.stringify(envelope), headers: null, at: now })
    if (this.#o.role.journal) this.#journal(envelope, 'out', topic, now)
  }

  #journal(envelope: Envelope, direction: 'in' | 'out' | 'timer', topic: string, at: number): void {
    this.#q.record.run({
      messageId: envelope.message_id,
      orderId: envelope.order_id,
      sagaId: envelope.saga_id,
      direction,
      topic,
      type: typeOf(envelope),
      attempt: attemptOf(envelope),
      at,
      envelope: JSON.stringify(envelope),
    })
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
    const outcome = this.#o.db.$client.transaction((): Outcome => {
      if (this.#q.seen.get({ id })) return 'duplicate'
      this.#q.markSeen.run({ id, at: now })
      this.#q.enqueue.run({
        topic: this.#o.topics.dlq,
        key: letter.key ?? `${record.topic}:${record.partition}`,
        value: JSON.stringify(letter),
        headers: JSON.stringify({ 'x-dlq-reason': reason.slice(0, 500), 'x-dlq-role': this.#o.role.name }),
        at: now,
      })
      return 'dead-lettered'
    }).immediate()
    if (outcome === 'dead-lettered') {
      this.#o.log.warn({ reason, topic: record.topic, partition: record.partition, offset: record.offset.toString() }, 'message dead-lettered')
      this.relay()
    }
    return outcome
  }

  #maybeCrash(point: CrashPoint, type: string | undefined): void {
    const plan = this.#o.crash
    if (!plan || plan.at !== point || (plan.onType && plan.onType !== type) || fs.existsSync(plan.marker)) return
    fs.writeFileSync(plan.marker, `${point} ${type ?? ''}\n`)
    this.#o.log.warn({ crash: point, type }, 'crash point reached; dying abruptly')
    process.kill(process.pid, 'SIGKILL')
  }

  #fatal(error: Error): void {
    this.#o.log.fatal({ err: error }, 'consumer failed')
    this.#o.onFatal?.(error)
  }
}

class Rejected extends Error {}

function positionId(record: ConsumedRecord): string {
  return `record:${record.topic}:${record.partition}:${record.offset}`
}
