import { randomUUID } from 'node:crypto'

import type { Logger } from 'pino'

import type { Db } from '../db/database.js'
import { derivedIds, derivedRandom } from './ids.js'
import { parseEnvelope, type Envelope, type Message } from '../envelope.js'
import type { ConsumedRecord, MessageBus } from '../kafka/port.js'
import type { TopicNames } from '../topics.js'
import { traceHeadersOf, type HandlingInput, type RuntimeObserver, type TraceHeaders } from '../observe/observer.js'
import type { DecideContext, Decision, Outcome, RoleHandler } from './role.js'
import { Crasher, type CrashPlan } from './crash.js'
import { LocalStore } from './local-store.js'
import { Owned, Relay } from './relay.js'
import { eventAtOf, TIMER_HEADER, Timers } from './timers.js'

export { TIMER_HEADER } from './timers.js'
import { DEFAULT_COMMIT_INTERVAL_MS } from '../config.js'
import { Membership, type ConnectionEvent } from './membership.js'

export type { Outcome } from './role.js'
export { CRASH_POINTS, type CrashPlan, type CrashPoint } from './crash.js'

// Records handled in one SQLite transaction at most: enough to amortise the commit, few enough
// that the relay and the fetches are not kept waiting behind a long synchronous stretch.
const HANDLE_BATCH = 256
const TIMER_POLL_MS = 100
const RELAY_RETRY_MS = 1000

export interface RuntimeOptions {
  role: RoleHandler
  db: Db
  bus: MessageBus
  topics: TopicNames
  /**
   * The role's compacted changelog. Every state change is written to it, to the partition of the
   * input that caused it, by that partition's transactional writer; a partition's state is
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
  /** How often, at most, a partition commits its changelog records and offset (SAGA_COMMIT_INTERVAL). */
  commitIntervalMs?: number
  /** Told when the consumer fails and when it is back, for /healthz and the metrics. */
  onConnection?: (event: ConnectionEvent) => void
  /** Metrics and tracing: told of each message handled and each relay send. */
  observer?: RuntimeObserver
  /**
   * The saga definition's hash: stamped on every message this role writes, and a message stamped
   * with another one is refused (dead-lettered with the reason), not handled under the wrong steps.
   */
  definition?: string
  /** Partitions whose records are prepared (a role's outside work) at once; each partition stays in order. */
  concurrency?: number
}

export type { ConnectionEvent } from './membership.js'

/** SQLite failures that say nothing about the message: retrying later may succeed. */
const TRANSIENT_SQLITE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|READONLY)/

type Source = { record?: ConsumedRecord; timer?: { key: string; part: number | null; dueAt?: number }; prepared?: unknown }

const DEFAULT_CONCURRENCY = 8
/** Records waiting in the lanes before the consumer is paused. */
const LANE_BACKLOG = 1024
/** A role's prepare() that threw: the record is dead-lettered with the error, like a handler's. */
class PrepareFailed {
  constructor(readonly error: Error) {}
}

/**
 * The one I/O shell every role runs in: inbox check → decide → state, inbox row, outbox rows and
 * changelog rows in one synchronous SQLite transaction. The relay sends the outputs at once and
 * commits each partition's changelog and offset after them (relay.ts). In a group, every state
 * change comes from a record of the partition's log, a due timer included: it is published to the
 * role's own input and handled when it is read back. So an instance that lost the partition and
 * still runs (a zombie) can only repeat, with the same message ids, what the owner publishes too.
 */
export class Runtime {
  readonly #o: RuntimeOptions
  readonly #clock: () => number
  readonly #random: (() => number) | undefined
  readonly #store: LocalStore
  readonly #crash: Crasher
  readonly #relay: Relay
  readonly #owned = new Map<number, Owned>()
  readonly #membership: Membership
  #timerLoop: NodeJS.Timeout | undefined
  #relayLoop: NodeJS.Timeout | undefined
  /** Set once the role consumes in a group: from then on output of a partition goes only while it is owned here. */
  #grouped = false
  #stopping = false
  /** Records received and not yet handled: handled together, in one SQLite transaction. */
  #inbox: ConsumedRecord[] = []
  #flushing = false
  /** With a role that prepares: records waiting per partition, and the partitions being worked on. */
  readonly #lanes = new Map<number, ConsumedRecord[]>()
  readonly #running = new Map<number, Promise<void>>()
  /** The consumer, paused until the lanes have room again. */
  #roomWaiters: (() => void)[] = []
  #closing = false
  /** While a batch is in its transaction: what to do once it has committed (logs, crash points). */
  #afterCommit: (() => void)[] | null = null
  readonly #timers: Timers

  constructor(options: RuntimeOptions) {
    this.#o = options
    this.#clock = options.clock ?? Date.now
    this.#random = options.random
    this.#store = new LocalStore(options.db, options.role.global ? undefined : options.changelog, this.#clock)
    this.#crash = new Crasher(options.crash, options.log)
    this.#relay = new Relay({
      store: this.#store,
      bus: options.bus,
      owned: this.#owned,
      grouped: () => this.#grouped,
      crash: this.#crash,
      log: options.log,
      ...(options.observer ? { observer: options.observer } : {}),
      onStuck: (error) => void this.#membership.rejoin(error),
      onFenced: (part) => this.#membership.revoked([part]),
      commitIntervalMs: options.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS,
    })
    this.#timers = new Timers({
      store: this.#store,
      bus: options.bus,
      log: options.log,
      clock: this.#clock,
      input: () => options.topics[options.role.consumes[0]!],
      act: (message, timer, trace) => void this.#observed({ trace }, message.type, () => this.apply(message, { timer })),
      touched: (part) => (part !== null && this.#owned.has(part) ? this.#relay.schedule(part) : void this.relay()),
    })
    const [input] = options.role.consumes
    this.#membership = new Membership({
      bus: options.bus,
      log: options.log,
      store: this.#store,
      relay: this.#relay,
      timers: this.#timers,
      owned: this.#owned,
      input: input ? { topic: options.topics[input], groupId: options.groupId, ...(options.instanceId ? { instanceId: options.instanceId } : {}), all: Boolean(options.role.global) } : undefined,
      receive: (record) => this.#receive(record),
      // Records already received for a revoked partition stay: the consumer may keep its position
      // when the partition comes back, and dropping them lost orders in the soak.
      // A lane's records of a partition that left are dropped: the partition is fetched again from
      // its committed offset wherever it goes next, here included, and the old lane must not run
      // ahead of that. The batch inbox keeps them (handled as not-owned, or in order if it is back).
      dropped: (partitions) => this.#dropLanes(partitions),
      stopping: () => this.#stopping,
      ...(options.brokerLostAfterMs !== undefined ? { brokerLostAfterMs: options.brokerLostAfterMs } : {}),
      ...(options.onConnection ? { onConnection: options.onConnection } : {}),
      fatal: (error) => this.#fatal(error),
    })
  }

  get role(): RoleHandler {
    return this.#o.role
  }

  async start(): Promise<void> {
    this.#grouped = Boolean(this.#o.role.consumes[0]) && !this.#o.role.global
    if (this.#grouped) this.#store.keepPartitionRowsInMemory((rows) => this.#relay.queue(rows))
    await this.#membership.consume()
    this.#timerLoop = setInterval(() => this.fireDueTimers(), TIMER_POLL_MS)
    this.#relayLoop = setInterval(() => void this.relay(), RELAY_RETRY_MS)
    void this.relay()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timerLoop)
    clearInterval(this.#relayLoop)
    // Handle nothing more, publish what was handled and commit it while the group membership still
    // stands, then leave: the next owner starts where this one committed.
    // A lane in the middle of its outside work finishes it and records the result; it takes no more.
    this.#closing = true
    for (const resolve of this.#roomWaiters.splice(0)) resolve()
    await Promise.race([Promise.allSettled(this.#running.values()), new Promise((resolve) => setTimeout(resolve, 5_000).unref())])
    this.#stopping = true
    await this.drain()
    for (const owned of this.#owned.values()) owned.release()
    await this.#membership.close()
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
  handleRecords(records: ConsumedRecord[], prepared: unknown[] = []): Outcome[] {
    const after: (() => void)[] = []
    const handled = new Map<number, bigint>()
    this.#afterCommit = after
    let outcomes: Outcome[]
    try {
      // A read model is read again from its topic if power loss takes its last commits (its
      // positions go with them): it need not wait for the disk.
      const commit = this.#o.role.global ? <T>(work: () => T): T => this.#store.lightly(work) : <T>(work: () => T): T => work()
      outcomes = commit(() =>
        this.#store.transaction(() =>
          records.map((record, i): Outcome => {
            const owned = this.#owned.get(record.partition)
            if (this.#grouped && (this.#stopping || !owned?.ready)) return 'not-owned'
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
    const through = this.#store.lastSeq
    for (const [partition, next] of handled) this.#owned.get(partition)?.handled(through, next)
    void this.#relay.publish()
    for (const partition of handled.keys()) this.#relay.schedule(partition)
    return outcomes
  }

  /** Records that arrive in one turn (a fetch) are handled in the next, together. */
  #receive(record: ConsumedRecord): void | Promise<void> {
    if (this.#o.role.prepare) {
      const lane = this.#lanes.get(record.partition)
      if (lane) lane.push(record)
      else this.#lanes.set(record.partition, [record])
      this.#pump()
      // Backpressure: the consumer waits while the lanes hold this much, instead of fetching the backlog into memory.
      if (this.#queuedInLanes() >= LANE_BACKLOG) return new Promise<void>((resolve) => this.#roomWaiters.push(resolve))
      return
    }
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
   * A role that does outside work: each partition's records one at a time, in order (prepare,
   * then handle in one transaction), up to `concurrency` partitions at once.
   */
  #pump(): void {
    const limit = this.#o.concurrency ?? DEFAULT_CONCURRENCY
    for (const [part, lane] of this.#lanes) {
      if (this.#running.size >= limit || this.#closing || this.#stopping) return
      if (this.#running.has(part) || lane.length === 0) continue
      const run = this.#runLane(part, lane)
        .catch((error: Error) => this.#fatal(error))
        .finally(() => {
          this.#running.delete(part)
          if (lane.length === 0 && this.#lanes.get(part) === lane) this.#lanes.delete(part)
          this.#pump()
        })
      this.#running.set(part, run)
    }
  }

  async #runLane(part: number, lane: ConsumedRecord[]): Promise<void> {
    while (lane.length > 0 && !this.#closing && !this.#stopping) {
      const record = lane.shift()!
      this.#makeRoom()
      const prepared = await this.#prepare(record)
      // The partition left while its work was outside: its records come again from the committed offset.
      if (this.#lanes.get(part) !== lane) return
      try {
        this.handleRecords([record], [prepared])
      } catch (error) {
        // Nothing of it was committed: it comes again to whoever owns the partition next.
        lane.length = 0
        this.#fatal(error as Error)
        return
      }
    }
  }

  #queuedInLanes(): number {
    let n = 0
    for (const lane of this.#lanes.values()) n += lane.length
    return n
  }

  #makeRoom(): void {
    if (this.#roomWaiters.length > 0 && this.#queuedInLanes() < LANE_BACKLOG / 2) for (const resolve of this.#roomWaiters.splice(0)) resolve()
  }

  #dropLanes(partitions: number[]): void {
    for (const p of partitions) {
      const lane = this.#lanes.get(p)
      if (!lane) continue
      lane.length = 0
      this.#lanes.delete(p)
    }
    this.#makeRoom()
  }

  /** The role's outside work for a record it will handle: nothing for one not owned, unreadable or seen. */
  async #prepare(record: ConsumedRecord): Promise<unknown> {
    const prepare = this.#o.role.prepare
    if (!prepare) return undefined
    if (this.#grouped && !this.#owned.get(record.partition)?.ready) return undefined
    const parsed = parseEnvelope(record.value)
    if (!parsed.ok || this.#refusal(parsed.message)) return undefined
    const store = this.#store
    if (store.seen(parsed.message.message_id)) return undefined
    try {
      return await prepare(parsed.message, { get: (scope, key) => store.state.get(scope, key) })
    } catch (error) {
      return new PrepareFailed(error as Error)
    }
  }

  /** Why this role must not handle a message made under another saga definition; undefined if it may. */
  #refusal(message: Message): string | undefined {
    const theirs = message.saga_definition
    const ours = this.#o.definition
    if (!ours || typeof theirs !== 'string' || theirs === ours) return undefined
    return `saga definition mismatch: this message was made under definition ${theirs}, ${this.#o.role.name} runs ${ours}; give every role the same saga module (--saga)`
  }

  /** Runs `work` once the enclosing batch has committed; at once outside a batch. */
  #whenCommitted(work: () => void): void {
    if (this.#afterCommit) this.#afterCommit.push(work)
    else work()
  }

  /** Runs one message through inbox, decision, state and outbox, in one transaction. */
  apply(message: Message, source: Source = {}): Outcome {
    const store = this.#store
    const timerKey = source.timer?.key ?? (source.record ? source.record.headers[TIMER_HEADER] : undefined)
    const now = eventTime(source, message, timerKey !== undefined, this.#clock)
    const ctx: DecideContext = { now, newId: derivedIds(message.message_id), random: this.#random ?? derivedRandom(message.message_id), ...(source.prepared !== undefined ? { prepared: source.prepared } : {}) }
    const part = source.record?.partition ?? source.timer?.part ?? null
    let decision: Decision | undefined
    try {
      const outcome = store.within(part, () =>
        store.transaction((): Outcome => {
          if (timerKey !== undefined) this.#timers.fired(timerKey, message.message_id)
          if (source.record && this.#o.role.global) store.setPosition(source.record.topic, source.record.partition, source.record.offset + 1n)
          if (store.seen(message.message_id)) {
            store.writeChangelog(now)
            return 'duplicate'
          }
          const refusal = this.#refusal(message)
          if (refusal) throw new Refused(refusal)
          if (source.prepared instanceof PrepareFailed) throw source.prepared.error
          decision = this.#o.role.handle(message, store.state, ctx)
          if (decision.reject) throw new Rejected(decision.reject)
          this.#crash.maybe('before-commit', message.type)
          store.markSeen(message.message_id, message.order_id, now)
          // Every message names its cause; a timer's cause is the timer message itself, which shows in the log only this way.
          for (const out of decision.messages ?? []) store.enqueue(this.#o.topics[out.topic], this.#stamped({ ...out.envelope, causation_id: out.envelope.causation_id ?? message.message_id }), now)
          if (decision.timer === null) store.clearTimer(message.order_id)
          // The timer keeps the trace context, so a retry stays in the order's trace.
          // A timer's delay runs from when the input is handled here, on this host's clock: an input
          // handled late (lag, a role back from an outage) must not find its timers already due.
          // Only the local schedule depends on it: the timer's message is handled at the time the
          // decision gave (event_at), so what it causes is the same wherever and whenever it fires.
          else if (decision.timer) {
            const input = { ...decision.timer.message, event_at: decision.timer.dueAt, ...(store.trace ? { trace_headers: store.trace } : {}) }
            store.setTimer(message.order_id, this.#clock() + Math.max(0, decision.timer.dueAt - now), JSON.stringify(input))
          }
          store.writeChangelog(now)
          return 'processed'
        }),
      )
      if (outcome === 'duplicate') this.#o.log.debug({ message_id: message.message_id, type: message.type, order_id: message.order_id }, 'duplicate ignored')
      if (outcome === 'processed') {
        this.#whenCommitted(() => {
          this.#crash.maybe('after-commit', message.type)
          this.#crash.arm('after-changelog', message.type, part, this.#store.lastSeq)
          for (const n of decision?.notices ?? []) this.#o.log[n.level]({ ...n.fields }, n.msg)
          // A consumed record's outputs are relayed by handleRecords, with its batch.
          if (decision?.messages?.length && !source.record) void this.relay()
        })
      }
      return outcome
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      if (TRANSIENT_SQLITE.test(code)) throw error
      const reason = error instanceof Rejected ? error.message : `handler error: ${(error as Error).message}`
      if (error instanceof Refused) this.#o.log.error({ message_id: message.message_id, order_id: message.order_id, type: message.type }, reason)
      // A timer's message was made by this role; if it cannot be handled, log it rather than loop.
      if (source.timer) {
        // The transaction that deleted the timer rolled back: delete it now, or it fires forever.
        this.#timers.drop(source.timer.key, source.timer.part)
        this.#o.log.error({ err: error, message }, 'timer message could not be handled; dropped')
        return 'dead-lettered'
      }
      if (!source.record) {
        this.#o.log.error({ err: error, message }, 'message could not be handled; dropped')
        return 'dead-lettered'
      }
      // A timer's message read back from the log: its timer came back with the rollback; it must not fire again.
      if (timerKey !== undefined) this.#timers.drop(timerKey, part, undefined, message.message_id)
      // Keyed by position, not message_id, so the same message replayed from the dead-letter
      // topic after a fix is handled afresh.
      return this.#deadLetter(source.record, reason, positionId(source.record))
    }
  }

  #stamped(envelope: Envelope): Envelope {
    return this.#o.definition ? { ...envelope, saga_definition: this.#o.definition } : envelope
  }

  /**
   * Writes outgoing messages that do not answer a consumed one (an HTTP request, a CLI
   * command) through the outbox, in one transaction with `work`'s own state changes.
   */
  submit(work: (store: LocalStore['state'], ctx: DecideContext) => Decision, trace?: TraceHeaders): Decision {
    const store = this.#store
    const now = this.#clock()
    const ctx: DecideContext = { now, newId: randomUUID, random: this.#random ?? Math.random }
    const decision = store.within(null, () => {
      store.trace = trace
      return store.transaction(() => {
        const d = work(store.state, ctx)
        if (d.reject) throw new Rejected(d.reject)
        for (const out of d.messages ?? []) store.enqueue(this.#o.topics[out.topic], this.#stamped(out.envelope), now)
        return d
      })
    })
    void this.relay()
    return decision
  }

  read<T>(scope: string, key: string): T | undefined {
    return this.#store.state.get<T>(scope, key)
  }

  /**
   * Retention (retention.ts): deletes the rows behind these changelog keys and writes a tombstone
   * for each, in one unit of the partition, so a restore does not bring them back. False when the
   * partition is not, or no longer, owned and restored here.
   */
  forget(part: number, keys: string[]): boolean {
    if (this.#grouped && (this.#stopping || !this.#owned.get(part)?.ready)) return false
    const store = this.#store
    const now = this.#clock()
    store.within(part, () =>
      store.transaction(() => {
        for (const key of keys) {
          store.restoreOne(part, key, null, now)
          if (store.changelog) store.enqueueRaw({ topic: store.changelog, key, value: null, headers: null, at: now, dest: part })
        }
      }),
    )
    if (this.#owned.has(part)) this.#relay.schedule(part)
    else void this.relay()
    return true
  }

  /**
   * Fires the due timers of the partitions this instance owns (all of them outside a group). In a
   * group a timer's message goes to the role's own input partition and is handled when read back,
   * in log order with the rest; outside one it is handled here at once.
   */
  fireDueTimers(): number {
    if (this.#stopping) return 0
    return this.#timers.fire(this.#grouped ? this.ownedPartitions() : null, this.#grouped)
  }

  /** Sends the outputs, and commits the progress of every owned partition that is due. */
  relay(part: number | null = null): Promise<void> {
    if (part !== null && this.#owned.has(part)) return this.#relay.publish().then(() => this.#relay.commit(part))
    for (const p of this.#owned.keys()) this.#relay.schedule(p)
    return this.#relay.publish()
  }

  /** Relays until the outbox is empty and every handled offset is committed, or the deadline passes (the broker may be down). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const busy = (): boolean => this.pendingOutbox() > 0 || [...this.#owned.values()].some((o) => o.behind)
    this.#relay.draining = true
    try {
      while (busy() && Date.now() < deadline) {
        await this.#relay.publish()
        await Promise.all([...this.#owned.keys()].map((p) => this.#relay.commit(p)))
        if (busy()) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    } finally {
      this.#relay.draining = false
    }
  }

  /** Messages and changelog records handled and not yet published or committed. */
  pendingOutbox(): number {
    let queued = 0
    for (const owned of this.#owned.values()) queued += owned.outputs.length + owned.changelog.length
    return this.#store.pending(this.#grouped ? '[]' : null) + queued
  }

  /** The rows of owned partitions waiting in memory, and when the oldest was written (ms), for the metrics. */
  queued(): { depth: number; oldestAt: number | null } {
    let depth = 0
    let oldestAt: number | null = null
    for (const owned of this.#owned.values()) {
      depth += owned.outputs.length + owned.changelog.length
      for (const first of [owned.outputs[0], owned.changelog[0]]) if (first && (oldestAt === null || first.at < oldestAt)) oldestAt = first.at
    }
    return { depth, oldestAt }
  }

  #observed(input: HandlingInput, type: string | undefined, work: () => Outcome): Outcome {
    const seen = this.#o.observer?.handling(input)
    const trace = seen ? seen.headers : input.trace
    const store = this.#store
    const outer = store.trace
    return withTrace(store, trace, () => {
      const outcome = work()
      seen?.end(outcome, type)
      return outcome
    }, outer)
  }

  #deadLetter(record: ConsumedRecord, reason: string, id: string): Outcome {
    const store = this.#store
    const now = this.#clock()
    const letter = {
      // Derived from the role and the record's position: handling the record again gives the same letter id.
      dead_letter_id: derivedIds(`${this.#o.role.name}|${id}`)(),
      reason,
      role: this.#o.role.name,
      source: { topic: record.topic, partition: record.partition, offset: record.offset.toString() },
      key: record.key?.toString('utf8') ?? null,
      headers: record.headers,
      value_base64: record.value?.toString('base64') ?? null,
      dead_lettered_at: new Date(now).toISOString(),
    }
    const outcome = store.within(record.partition, () =>
      store.transaction((): Outcome => {
        if (store.seen(id)) return 'duplicate'
        store.markSeen(id, id, now)
        store.enqueueRaw({
          topic: this.#o.topics.dlq,
          key: letter.key ?? `${record.topic}:${record.partition}`,
          value: JSON.stringify(letter),
          headers: JSON.stringify({ 'x-dlq-reason': reason.slice(0, 500), 'x-dlq-role': this.#o.role.name }),
          at: now,
          dest: null,
        })
        if (this.#o.role.global) store.setPosition(record.topic, record.partition, record.offset + 1n)
        store.writeChangelog(now)
        return 'dead-lettered'
      }),
    )
    if (outcome === 'dead-lettered') {
      this.#whenCommitted(() => this.#o.log.warn({ reason, topic: record.topic, partition: record.partition, offset: record.offset.toString() }, 'message dead-lettered'))
    }
    return outcome
  }

  #fatal(error: Error): void {
    this.#o.log.fatal({ err: error }, 'consumer failed')
    this.#o.onFatal?.(error)
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
