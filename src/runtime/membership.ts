import type { Logger } from 'pino'

import { DEFAULT_BROKER_LOST_AFTER_MS } from '../config.js'
import { errorCauses } from '../kafka/explain.js'
import { BrokerLostError, type ConsumedRecord, type MessageBus, type PartitionWriter, type RetryInPlace, type Subscription } from '../kafka/port.js'
import { brokerLostSentence, waitForBroker } from './broker-wait.js'
import type { LocalStore } from './local-store.js'
import type { Ownership } from './ownership.js'
import type { Relay } from './relay.js'
import type { Timers } from './timers.js'

// A subscription whose broker is gone may never finish leaving the group: the coordinator expires it.
const CLOSE_WAIT_MS = 5_000

// A leader or coordinator that moves, a broker that restarts: requests are retried in place for up
// to this long (never longer than SAGA_BROKER_LOST_AFTER) before the member leaves and joins again.
const RETRY_IN_PLACE_MS = 30_000

export type ConnectionEvent =
  | { kind: 'lost'; reason: string }
  /** `rejoined`: the member left and joined again; otherwise its requests were answered again in place. */
  | { kind: 'back'; downMs: number; rejoined: boolean }
  /** One request of the consumer retried. */
  | { kind: 'retry'; operation: string }

export interface MembershipOptions {
  bus: MessageBus
  log: Logger
  store: LocalStore
  relay: Relay
  timers: Timers
  ownership: Ownership
  /** The input: one topic in a group, or every partition of it read directly (`all`). */
  input: { topic: string; groupId: string; instanceId?: string; all: boolean } | undefined
  /** A promise: the consumer waits for it before it hands over the next record. */
  receive: (record: ConsumedRecord) => void | Promise<void>
  /** These partitions left: records of them received and not yet handled must not be handled. */
  dropped: (partitions: number[]) => void
  stopping: () => boolean
  brokerLostAfterMs?: number
  onConnection?: (event: ConnectionEvent) => void
  fatal: (error: Error) => void
}

/**
 * Which input partitions this instance owns, and what owning one takes: a partition is restored
 * from the changelog before its first record is handled, and forgotten when it goes. When the
 * consumer fails, the instance leaves and joins again in the process.
 */
export class Membership {
  readonly #o: MembershipOptions
  #subscription: Subscription | undefined
  #rejoining = false
  /** Since when the consumer has been away from the broker, retrying in place or joining again. */
  #awaySince: number | undefined
  #deadline: NodeJS.Timeout | undefined
  /** Moves on each rejoin: an assignment of the subscription left behind stops restoring. */
  #generation = 0

  constructor(options: MembershipOptions) {
    this.#o = options
  }

  async consume(): Promise<void> {
    const input = this.#o.input
    if (!input) return
    if (input.all) {
      await this.#followAll(input.topic)
      return
    }
    this.#subscription = await this.#o.bus.subscribe({
      groupId: input.groupId,
      topic: input.topic,
      ...(input.instanceId ? { instanceId: input.instanceId } : {}),
      ownership: {
        assigned: (writers) => this.#assigned(writers),
        revoked: (partitions) => this.revoked(partitions),
      },
      handler: (record) => this.#o.receive(record),
      onError: (error) => void this.rejoin(error),
      ...this.#retryInPlace(),
    })
  }

  #retryInPlace(): RetryInPlace {
    return {
      retryWithinMs: Math.min(RETRY_IN_PLACE_MS, this.#lostAfterMs),
      onConnection: (event) => (event.kind === 'lost' ? this.#away(event.reason) : this.#back(false)),
      onRetry: (operation) => this.#o.onConnection?.({ kind: 'retry', operation }),
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#deadline)
    await this.#subscription?.close()
  }

  get #lostAfterMs(): number {
    return this.#o.brokerLostAfterMs ?? DEFAULT_BROKER_LOST_AFTER_MS
  }

  /** The consumer lost the broker: said once, and the deadline runs from here, whatever happens next. */
  #away(reason: string): void {
    if (this.#awaySince !== undefined || this.#o.stopping()) return
    const since = Date.now()
    this.#awaySince = since
    this.#o.onConnection?.({ kind: 'lost', reason })
    if (this.#rejoining) return
    this.#o.log.warn({ reason }, 'the consumer has lost the broker; retrying in place, partitions kept')
    // Retrying in place has no end of its own while the session holds on: the deadline ends it.
    this.#deadline = setTimeout(() => {
      if (this.#awaySince !== since || this.#rejoining || this.#o.stopping()) return
      this.#o.fatal(new BrokerLostError(brokerLostSentence(Date.now() - since, this.#lostAfterMs)))
    }, this.#lostAfterMs)
    this.#deadline.unref()
  }

  #back(rejoined: boolean): void {
    clearTimeout(this.#deadline)
    const since = this.#awaySince
    if (since === undefined || (this.#rejoining && !rejoined)) return
    this.#awaySince = undefined
    if (!rejoined) this.#o.log.info({ down_ms: Date.now() - since }, 'the consumer has the broker again; consuming on, no partition moved')
    this.#o.onConnection?.({ kind: 'back', downMs: Date.now() - since, rejoined })
  }

  /**
   * The consumer failed: a connection that closed, a broker or coordinator that went away, a
   * partition fenced while still assigned here. Do in the process what a supervisor would do with
   * a fresh one: drop every partition (a new owner, maybe this one, restores it from the
   * changelog), wait for the broker, and join again. Only a broker gone for longer than
   * `brokerLostAfterMs` ends the role.
   */
  async rejoin(error: Error): Promise<void> {
    if (this.#o.stopping() || this.#rejoining) return
    this.#rejoining = true
    this.#generation++
    clearTimeout(this.#deadline)
    this.#o.log.warn({ err: error, causes: errorCauses(error) }, 'the consumer failed; leaving and joining again')
    this.#away(error.message)
    const lostAt = this.#awaySince ?? Date.now()
    const subscription = this.#subscription
    this.#subscription = undefined
    const partitions = this.#o.ownership.partitions()
    if (partitions.length > 0) this.revoked(partitions)
    await Promise.race([subscription?.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())])
    try {
      // The broker may answer before the group does: a coordinator on a dead node stays in the
      // metadata until the cluster has moved it. Each attempt is a fresh client, fresh metadata.
      await waitForBroker(this.#o.bus, { since: lostAt, lostAfterMs: this.#o.brokerLostAfterMs ?? DEFAULT_BROKER_LOST_AFTER_MS, log: this.#o.log, stopped: () => this.#o.stopping() }, async () => {
        await this.#o.bus.reach()
        await this.consume()
      })
      if (this.#o.stopping()) {
        // Stopped while joining: stop() may have closed nothing yet.
        await (this.#subscription as Subscription | undefined)?.close()
        return
      }
      this.#o.log.info({ down_ms: Date.now() - lostAt }, 'consuming again')
      this.#back(true)
    } catch (failure) {
      this.#o.fatal(failure as Error)
    } finally {
      this.#rejoining = false
    }
  }

  async #assigned(writers: PartitionWriter[]): Promise<void> {
    const generation = this.#generation
    for (const writer of writers) {
      if (generation !== this.#generation) return
      const owned = this.#o.ownership.take(writer)
      const restored = await this.#restore(writer.partition)
      if (generation !== this.#generation) {
        if (this.#o.ownership.holds(writer.partition, owned)) this.revoked([writer.partition])
        return
      }
      if (this.#o.ownership.holds(writer.partition, owned)) owned.restored()
      this.#o.log.info({ partition: writer.partition, ...restored }, 'partition assigned; state restored from the changelog')
    }
    void this.#o.relay.publish()
  }

  revoked(partitions: number[]): void {
    this.#o.timers.forget(partitions)
    this.#o.dropped(partitions)
    for (const p of partitions) {
      const owned = this.#o.ownership.giveUp(p)
      // Once its last commit has settled, forget the partition: a stale copy must not be read
      // (state keyed by something other than an order, like chaos, is read whatever its partition).
      void (owned?.settled() ?? Promise.resolve()).finally(() => {
        if (!this.#o.ownership.owns(p)) this.#o.store.wipe(p)
      })
    }
    this.#o.log.info({ partitions }, 'partitions revoked; their timers stop here')
  }

  /**
   * Replaces the local copy of a partition's state with the changelog's. The local copy may be
   * ahead (handled here, never committed to Kafka) or behind (another instance owned it since).
   */
  async #restore(part: number): Promise<{ records: number; ms: number }> {
    const started = Date.now()
    const records: { key: string; value: string | null }[] = []
    const changelog = this.#o.store.changelog
    if (changelog) {
      await this.#o.bus.read({ topic: changelog, partitions: [part], handler: (r) => void records.push({ key: r.key?.toString('utf8') ?? '', value: r.value ? r.value.toString('utf8') : null }) })
    }
    this.#o.store.restore(part, records)
    return { records: records.length, ms: Date.now() - started }
  }

  /**
   * A role that needs every partition (the api's read model) reads them all itself, from positions
   * kept in its own file: a deleted file reads the topic again from the start.
   */
  async #followAll(topic: string): Promise<void> {
    const ends = await this.#o.bus.endOffsets(topic)
    const known = this.#o.store.positions(topic)
    this.#subscription = await this.#o.bus.tail({
      topic,
      fromOffsets: ends.map((_, p) => known.get(p) ?? 0n),
      handler: (record) => this.#o.receive(record),
      onError: (error) => void this.rejoin(error),
      ...this.#retryInPlace(),
    })
  }
}
