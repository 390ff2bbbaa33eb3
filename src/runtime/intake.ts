import { randomUUID } from 'node:crypto'

import type { Logger } from 'pino'

import { parseEnvelope, type Envelope, type Message } from '../envelope.js'
import type { ConsumedRecord } from '../kafka/port.js'
import { traceHeadersOf, type HandlingInput, type RuntimeObserver, type TraceHeaders } from '../observe/observer.js'
import type { TopicNames } from '../topics.js'
import type { Commits } from './commits.js'
import type { Crasher } from './crash.js'
import { deadLetter } from './dead-letter.js'
import { derivedIds, derivedRandom } from './ids.js'
import type { LocalStore } from './local-store.js'
import type { Ownership } from './ownership.js'
import type { Relay } from './relay.js'
import type { DecideContext, Decision, Outcome, RoleHandler } from './role.js'
import { eventAtOf, TIMER_HEADER, type Timers } from './timers.js'

/** SQLite failures that say nothing about the message: retrying later may succeed. */
const TRANSIENT_SQLITE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|READONLY)/

export type Source = { record?: ConsumedRecord; timer?: { key: string; part: number | null; dueAt?: number }; prepared?: unknown }

/** A role's prepare() that threw: the record is dead-lettered with the error, like a handler's. */
class PrepareFailed {
  constructor(readonly error: Error) {}
}

export interface IntakeOptions {
  role: RoleHandler
  store: LocalStore
  topics: TopicNames
  ownership: Ownership
  timers: Timers
  relay: Relay
  commits: Commits
  crash: Crasher
  log: Logger
  clock: () => number
  random: (() => number) | undefined
  observer: RuntimeObserver | undefined
  definition: string | undefined
  definitions: readonly string[]
  /** In a group, only records of partitions owned and restored here are handled. */
  grouped: () => boolean
  stopping: () => boolean
}

/**
 * Handling in the file: inbox check → decide → state, inbox row, outbox rows and changelog rows in
 * one synchronous SQLite transaction. A message that cannot be handled is dead-lettered instead,
 * in a transaction of its own.
 */
export class Intake {
  readonly #o: IntakeOptions
  /** While a batch is in its transaction: what to do once it has committed (logs, crash points). */
  #afterCommit: (() => void)[] | null = null

  constructor(options: IntakeOptions) {
    this.#o = options
  }

  /**
   * Handles records in one SQLite transaction (group commit), each in a savepoint of its own, so a
   * record that fails rolls back alone and is dead-lettered while the others stand. Synchronous:
   * when it returns, every record's effects are committed locally.
   */
  handleRecords(records: ConsumedRecord[], prepared: unknown[] = []): Outcome[] {
    const { store, ownership } = this.#o
    const after: (() => void)[] = []
    const handled = new Map<number, bigint>()
    this.#afterCommit = after
    let outcomes: Outcome[]
    try {
      // A read model is read again from its topic if power loss takes its last commits (its
      // positions go with them): it need not wait for the disk.
      const commit = this.#o.role.global ? <T>(work: () => T): T => store.lightly(work) : <T>(work: () => T): T => work()
      outcomes = commit(() =>
        store.transaction(() =>
          records.map((record, i): Outcome => {
            const owned = ownership.get(record.partition)
            if (this.#o.grouped() && (this.#o.stopping() || !owned?.ready)) return 'not-owned'
            const work = prepared[i]
            const parsed = parseEnvelope(record.value)
            const outcome = this.#observed({ record, trace: traceHeadersOf(record.headers) }, parsed.ok ? parsed.message.type : undefined, () =>
              parsed.ok ? this.apply(parsed.message, { record, ...(work !== undefined ? { prepared: work } : {}) }) : this.#deadLetter(record, parsed.reason, positionId(record)),
            )
            if (owned) handled.set(record.partition, record.offset + 1n)
            return outcome
          }),
        ),
      )
    } finally {
      this.#afterCommit = null
    }
    for (const work of after) work()
    const through = store.lastSeq
    for (const [partition, next] of handled) ownership.get(partition)?.handled(through, next)
    void this.#o.relay.publish()
    for (const partition of handled.keys()) this.#o.commits.schedule(partition)
    return outcomes
  }

  /** A due timer's message, handled at once (outside a group). */
  timerDue(message: Message, timer: { key: string; part: number | null; dueAt: number }, trace: TraceHeaders | undefined): void {
    this.#observed({ trace }, message.type, () => this.apply(message, { timer }))
  }

  /** Runs one message through inbox, decision, state and outbox, in one transaction. */
  apply(message: Message, source: Source = {}): Outcome {
    const { store, role, timers, crash, log } = this.#o
    const timerKey = source.timer?.key ?? (source.record ? source.record.headers[TIMER_HEADER] : undefined)
    const now = eventTime(source, message, timerKey !== undefined, this.#o.clock)
    const ctx: DecideContext = { now, newId: derivedIds(message.message_id), random: this.#o.random ?? derivedRandom(message.message_id), ...(source.prepared !== undefined ? { prepared: source.prepared } : {}) }
    const part = source.record?.partition ?? source.timer?.part ?? null
    let decision: Decision | undefined
    try {
      const outcome = store.within(part, () =>
        store.transaction((): Outcome => {
          if (timerKey !== undefined) timers.fired(timerKey, message.message_id)
          if (source.record && role.global) store.setPosition(source.record.topic, source.record.partition, source.record.offset + 1n)
          if (store.seen(message.message_id)) {
            store.writeChangelog(now)
            return 'duplicate'
          }
          const refusal = this.refusal(message)
          if (refusal) throw new Refused(refusal)
          if (source.prepared instanceof PrepareFailed) throw source.prepared.error
          decision = role.handle(message, store.state, ctx)
          if (decision.reject) throw new Rejected(decision.reject)
          crash.maybe('before-commit', message.type)
          store.markSeen(message.message_id, message.order_id, now)
          // Every message names its cause; a timer's cause is the timer message itself, which shows in the log only this way.
          for (const out of decision.messages ?? []) store.enqueue(this.#o.topics[out.topic], this.#stamped({ ...out.envelope, causation_id: out.envelope.causation_id ?? message.message_id }, message.saga_definition), now)
          if (decision.timer === null) store.clearTimer(message.order_id)
          // The timer keeps the trace context, so a retry stays in the order's trace.
          // A timer's delay runs from when the input is handled here, on this host's clock: an input
          // handled late (lag, a role back from an outage) must not find its timers already due.
          // Only the local schedule depends on it: the timer's message is handled at the time the
          // decision gave (event_at), so what it causes is the same wherever and whenever it fires.
          else if (decision.timer) {
            const input = { ...decision.timer.message, event_at: decision.timer.dueAt, ...(store.trace ? { trace_headers: store.trace } : {}) }
            store.setTimer(message.order_id, this.#o.clock() + Math.max(0, decision.timer.dueAt - now), JSON.stringify(input))
          }
          store.writeChangelog(now)
          return 'processed'
        }),
      )
      if (outcome === 'duplicate') log.debug({ message_id: message.message_id, type: message.type, order_id: message.order_id }, 'duplicate ignored')
      if (outcome === 'processed') {
        this.#whenCommitted(() => {
          crash.maybe('after-commit', message.type)
          crash.arm('after-changelog', message.type, part, store.lastSeq)
          for (const n of decision?.notices ?? []) log[n.level]({ ...n.fields }, n.msg)
          // A consumed record's outputs are relayed by handleRecords, with its batch.
          if (decision?.messages?.length && !source.record) void this.#o.relay.send()
        })
      }
      return outcome
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      if (TRANSIENT_SQLITE.test(code)) throw error
      const reason = error instanceof Rejected ? error.message : `handler error: ${(error as Error).message}`
      if (error instanceof Refused) log.error({ message_id: message.message_id, order_id: message.order_id, type: message.type }, reason)
      // A timer's message was made by this role; if it cannot be handled, log it rather than loop.
      if (source.timer) {
        // The transaction that deleted the timer rolled back: delete it now, or it fires forever.
        timers.drop(source.timer.key, source.timer.part)
        log.error({ err: error, message }, 'timer message could not be handled; dropped')
        return 'dead-lettered'
      }
      if (!source.record) {
        log.error({ err: error, message }, 'message could not be handled; dropped')
        return 'dead-lettered'
      }
      // A timer's message read back from the log: its timer came back with the rollback; it must not fire again.
      if (timerKey !== undefined) timers.drop(timerKey, part, undefined, message.message_id)
      // Keyed by position, not message_id, so the same message replayed from the dead-letter
      // topic after a fix is handled afresh.
      return this.#deadLetter(source.record, reason, positionId(source.record))
    }
  }

  /**
   * Writes outgoing messages that do not answer a consumed one (an HTTP request, a CLI
   * command) through the outbox, in one transaction with `work`'s own state changes.
   */
  submit(work: (store: LocalStore['state'], ctx: DecideContext) => Decision, trace?: TraceHeaders): Decision {
    const { store } = this.#o
    const now = this.#o.clock()
    const ctx: DecideContext = { now, newId: randomUUID, random: this.#o.random ?? Math.random }
    const decision = store.within(null, () => {
      store.trace = trace
      return store.transaction(() => {
        const d = work(store.state, ctx)
        if (d.reject) throw new Rejected(d.reject)
        for (const out of d.messages ?? []) store.enqueue(this.#o.topics[out.topic], this.#stamped(out.envelope), now)
        return d
      })
    })
    void this.#o.relay.send()
    return decision
  }

  /** The role's outside work for a record it will handle: nothing for one not owned, unreadable or seen. */
  async prepare(record: ConsumedRecord): Promise<unknown> {
    const prepare = this.#o.role.prepare
    if (!prepare) return undefined
    if (this.#o.grouped() && !this.#o.ownership.isReady(record.partition)) return undefined
    const parsed = parseEnvelope(record.value)
    if (!parsed.ok || this.refusal(parsed.message)) return undefined
    const { store } = this.#o
    if (store.seen(parsed.message.message_id)) return undefined
    try {
      return await prepare(parsed.message, { get: (scope, key) => store.state.get(scope, key) })
    } catch (error) {
      return new PrepareFailed(error as Error)
    }
  }

  /** Why this role must not handle a message made under another saga definition; undefined if it may. */
  refusal(message: Message): string | undefined {
    const theirs = message.saga_definition
    const ours = this.#o.definition
    if (!ours || typeof theirs !== 'string' || theirs === ours || this.#o.definitions.includes(theirs)) return undefined
    return `saga definition mismatch: this message was made under definition ${theirs}, ${this.#o.role.name} runs ${this.#o.definitions.length > 1 ? this.#o.definitions.join(', ') : ours}; give every role the same saga module (--saga), with every version still in flight`
  }

  /** Runs `work` once the enclosing batch has committed; at once outside a batch. */
  #whenCommitted(work: () => void): void {
    if (this.#afterCommit) this.#afterCommit.push(work)
    else work()
  }

  /**
   * What a role writes carries a definition: its own choice (the orchestrator's, by the saga's
   * version), else that of the message it handled, when this role runs it, else the newest.
   */
  #stamped(envelope: Envelope, handled?: string): Envelope {
    if (!this.#o.definition) return envelope
    if (envelope.saga_definition && this.#o.definitions.includes(envelope.saga_definition)) return envelope
    const inherited = handled !== undefined && this.#o.definitions.includes(handled) ? handled : this.#o.definition
    return { ...envelope, saga_definition: inherited }
  }

  #observed(input: HandlingInput, type: string | undefined, work: () => Outcome): Outcome {
    const seen = this.#o.observer?.handling(input)
    const trace = seen ? seen.headers : input.trace
    const { store } = this.#o
    const outer = store.trace
    return withTrace(store, trace, () => {
      const outcome = work()
      seen?.end(outcome, type)
      return outcome
    }, outer)
  }

  #deadLetter(record: ConsumedRecord, reason: string, id: string): Outcome {
    const { store, role, log } = this.#o
    const outcome = deadLetter({ store, role, dlq: this.#o.topics.dlq, now: this.#o.clock() }, record, reason, id)
    if (outcome === 'dead-lettered') {
      this.#whenCommitted(() => log.warn({ reason, topic: record.topic, partition: record.partition, offset: record.offset.toString() }, 'message dead-lettered'))
    }
    return outcome
  }
}

class Rejected extends Error {}
/** Refused for its saga definition: logged as an error, as a person has to deploy the same one everywhere. */
class Refused extends Rejected {}

/** Runs `work` with the store's trace set for the messages it writes; restores the outer one after. */
function withTrace<T>(store: LocalStore, trace: TraceHeaders | undefined, work: () => T, outer: TraceHeaders | undefined): T {
  store.trace = trace
  try {
    return work()
  } finally {
    store.trace = outer
  }
}

/**
 * The time a message is handled at, as its decision sees it: a timer's due time, or the consumed
 * record's timestamp. Taken from the input and not the wall clock, so handling the same input from
 * the same state again gives the same messages, bodies included. The wall clock only where the
 * input carries no time (a record without a timestamp, an HTTP request).
 */
function eventTime(source: Source, message: Message, isTimer: boolean, clock: () => number): number {
  if (isTimer) {
    const at = eventAtOf(message) ?? source.timer?.dueAt
    if (at !== undefined) return at
  }
  if (source.record && source.record.timestamp > 0n) return Number(source.record.timestamp)
  return clock()
}

function positionId(record: ConsumedRecord): string {
  return `record:${record.topic}:${record.partition}:${record.offset}`
}
