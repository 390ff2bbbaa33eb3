import type { Logger } from 'pino'

import { DEFAULT_COMMIT_INTERVAL_MS } from '../config.js'
import type { Db } from '../db/database.js'
import type { Message } from '../envelope.js'
import type { ConsumedRecord, MessageBus } from '../kafka/port.js'
import type { RuntimeObserver, TraceHeaders } from '../observe/observer.js'
import type { TopicNames } from '../topics.js'
import { Commits } from './commits.js'
import { Crasher, type CrashPlan } from './crash.js'
import { Intake, type Source } from './intake.js'
import { LocalStore } from './local-store.js'
import { Membership, type ConnectionEvent } from './membership.js'
import { Ownership } from './ownership.js'
import { Receiver } from './receiver.js'
import { Relay } from './relay.js'
import type { DecideContext, Decision, Outcome, RoleHandler } from './role.js'
import { Timers } from './timers.js'

export { TIMER_HEADER } from './timers.js'
export type { Outcome } from './role.js'
export { CRASH_POINTS, type CrashPlan, type CrashPoint } from './crash.js'
export type { ConnectionEvent } from './membership.js'

const TIMER_POLL_MS = 100
const RELAY_RETRY_MS = 1000
const DEFAULT_CONCURRENCY = 8

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
  /**
   * Every definition hash this role runs (a deployment of several versions); `definition` when
   * absent. A message keeps the hash of the one it was handled under unless the role stamps its own.
   */
  definitions?: readonly string[]
  /** Partitions whose records are prepared (a role's outside work) at once; each partition stays in order. */
  concurrency?: number
}

/**
 * The one I/O shell every role runs in: inbox check → decide → state, inbox row, outbox rows and
 * changelog rows in one synchronous SQLite transaction (intake.ts). The relay sends the outputs at
 * once and commits each partition's changelog and offset after them (relay.ts, commits.ts). In a
 * group, every state change comes from a record of the partition's log, a due timer included: it
 * is published to the role's own input and handled when it is read back. So an instance that lost
 * the partition and still runs (a zombie) can only repeat, with the same message ids, what the
 * owner publishes too.
 */
export class Runtime {
  readonly #o: RuntimeOptions
  readonly #clock: () => number
  readonly #store: LocalStore
  readonly #ownership = new Ownership()
  readonly #commits: Commits
  readonly #relay: Relay
  readonly #timers: Timers
  readonly #intake: Intake
  readonly #receiver: Receiver
  readonly #membership: Membership
  #timerLoop: NodeJS.Timeout | undefined
  #relayLoop: NodeJS.Timeout | undefined
  /** Set once the role consumes in a group: from then on output of a partition goes only while it is owned here. */
  #grouped = false
  #stopping = false

  constructor(options: RuntimeOptions) {
    this.#o = options
    const { role, bus, log, observer } = options
    const clock = (this.#clock = options.clock ?? Date.now)
    const grouped = (): boolean => this.#grouped
    const stopping = (): boolean => this.#stopping
    const store = (this.#store = new LocalStore(options.db, role.global ? undefined : options.changelog, clock))
    const ownership = this.#ownership
    const crash = new Crasher(options.crash, log)
    const onStuck = (error: Error): void => void this.#membership.rejoin(error)
    const commits = (this.#commits = new Commits({
      ownership,
      crash,
      log,
      ...(observer ? { observer } : {}),
      onStuck,
      onFenced: (part) => this.#membership.revoked([part]),
      commitIntervalMs: options.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS,
    }))
    const relay = (this.#relay = new Relay({ store, bus, ownership, commits, grouped, crash, log, ...(observer ? { observer } : {}), onStuck }))
    const timers = (this.#timers = new Timers({
      store,
      bus,
      log,
      clock,
      input: () => options.topics[role.consumes[0]!],
      act: (message, timer, trace) => this.#intake.timerDue(message, timer, trace),
      touched: (part) => (part !== null && ownership.owns(part) ? commits.schedule(part) : void relay.send()),
    }))
    const intake = (this.#intake = new Intake({
      role,
      store,
      topics: options.topics,
      ownership,
      timers,
      relay,
      commits,
      crash,
      log,
      clock,
      random: options.random,
      observer,
      definition: options.definition,
      definitions: options.definitions ?? (options.definition ? [options.definition] : []),
      grouped,
      stopping,
    }))
    const receiver = (this.#receiver = new Receiver({ intake, lanes: Boolean(role.prepare), concurrency: options.concurrency ?? DEFAULT_CONCURRENCY, stopping, fatal: (error) => this.#fatal(error) }))
    const [input] = role.consumes
    this.#membership = new Membership({
      bus,
      log,
      store,
      relay,
      timers,
      ownership,
      input: input ? { topic: options.topics[input], groupId: options.groupId, ...(options.instanceId ? { instanceId: options.instanceId } : {}), all: Boolean(role.global) } : undefined,
      receive: (record) => receiver.receive(record),
      // Records already received for a revoked partition stay in the batch: the consumer may keep
      // its position when the partition comes back, and dropping them lost orders in the soak.
      dropped: (partitions) => receiver.dropped(partitions),
      stopping,
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
    if (this.#grouped) this.#store.keepPartitionRowsInMemory((rows) => this.#ownership.queue(rows, this.#store.changelog))
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
    await this.#receiver.close()
    this.#stopping = true
    await this.drain()
    for (const owned of this.#ownership.all()) owned.release()
    await this.#membership.close()
  }

  /** Partitions owned and restored, in order. */
  ownedPartitions(): number[] {
    return this.#ownership.readyPartitions()
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
    return this.#intake.handleRecords(records, prepared)
  }

  /** Runs one message through inbox, decision, state and outbox, in one transaction. */
  apply(message: Message, source: Source = {}): Outcome {
    return this.#intake.apply(message, source)
  }

  /**
   * Writes outgoing messages that do not answer a consumed one (an HTTP request, a CLI
   * command) through the outbox, in one transaction with `work`'s own state changes.
   */
  submit(work: (store: LocalStore['state'], ctx: DecideContext) => Decision, trace?: TraceHeaders): Decision {
    return this.#intake.submit(work, trace)
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
    if (this.#grouped && (this.#stopping || !this.#ownership.isReady(part))) return false
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
    if (this.#ownership.owns(part)) this.#commits.schedule(part)
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
    return this.#relay.send(part)
  }

  /** Relays until the outbox is empty and every handled offset is committed, or the deadline passes (the broker may be down). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const busy = (): boolean => this.pendingOutbox() > 0 || this.#ownership.behind()
    this.#commits.draining = true
    try {
      while (busy() && Date.now() < deadline) {
        await this.#relay.publish()
        await Promise.all(this.#ownership.partitions().map((p) => this.#commits.commit(p)))
        if (busy()) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    } finally {
      this.#commits.draining = false
    }
  }

  /** Messages and changelog records handled and not yet published or committed. */
  pendingOutbox(): number {
    return this.#store.pending(this.#grouped ? '[]' : null) + this.#ownership.queued().depth
  }

  /** The rows of owned partitions waiting in memory, and when the oldest was written (ms), for the metrics. */
  queued(): { depth: number; oldestAt: number | null } {
    return this.#ownership.queued()
  }

  #fatal(error: Error): void {
    this.#o.log.fatal({ err: error }, 'consumer failed')
    this.#o.onFatal?.(error)
  }
}
