import type { ConsumedRecord } from '../kafka/port.js'
import type { Intake } from './intake.js'

// Records handled in one SQLite transaction at most: enough to amortise the commit, few enough
// that the relay and the fetches are not kept waiting behind a long synchronous stretch.
const HANDLE_BATCH = 256
/** Records waiting in the lanes before the consumer is paused. */
const LANE_BACKLOG = 1024
// A lane in the middle of its outside work when the role stops gets this long to record its result.
const CLOSE_WAIT_MS = 5_000

export interface ReceiverOptions {
  intake: Pick<Intake, 'handleRecords' | 'prepare'>
  /** The role prepares its records (outside work): they wait in a lane per partition, not in one batch. */
  lanes: boolean
  /** Partitions whose records are prepared at once. */
  concurrency: number
  stopping: () => boolean
  fatal: (error: Error) => void
}

/**
 * How consumed records reach the intake. Records that arrive in one turn (a fetch) are handled in
 * the next, together, in one transaction. A role that does outside work takes each partition's
 * records one at a time, in order (prepare, then handle in one transaction), up to `concurrency`
 * partitions at once.
 */
export class Receiver {
  readonly #o: ReceiverOptions
  /** Records received and not yet handled: handled together, in one SQLite transaction. */
  #inbox: ConsumedRecord[] = []
  #flushing = false
  /** With a role that prepares: records waiting per partition, and the partitions being worked on. */
  readonly #lanes = new Map<number, ConsumedRecord[]>()
  readonly #running = new Map<number, Promise<void>>()
  /** The consumer, paused until the lanes have room again. */
  #roomWaiters: (() => void)[] = []
  #closing = false

  constructor(options: ReceiverOptions) {
    this.#o = options
  }

  receive(record: ConsumedRecord): void | Promise<void> {
    if (this.#o.lanes) {
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

  /**
   * A lane's records of a partition that left are dropped: the partition is fetched again from
   * its committed offset wherever it goes next, here included, and the old lane must not run
   * ahead of that. The batch inbox keeps them (handled as not-owned, or in order if it is back).
   */
  dropped(partitions: number[]): void {
    for (const p of partitions) {
      const lane = this.#lanes.get(p)
      if (!lane) continue
      lane.length = 0
      this.#lanes.delete(p)
    }
    this.#makeRoom()
  }

  /** Takes no more work: a lane in the middle of its outside work finishes it and records the result. */
  async close(): Promise<void> {
    this.#closing = true
    for (const resolve of this.#roomWaiters.splice(0)) resolve()
    await Promise.race([Promise.allSettled(this.#running.values()), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())])
  }

  #flush(): void {
    const batch = this.#inbox.splice(0, HANDLE_BATCH)
    try {
      if (batch.length > 0) this.#o.intake.handleRecords(batch)
    } catch (error) {
      // Nothing of the batch was committed: the records come again to whoever owns them next.
      this.#inbox.length = 0
      this.#flushing = false
      this.#o.fatal(error as Error)
      return
    }
    if (this.#inbox.length > 0) setImmediate(() => this.#flush())
    else this.#flushing = false
  }

  #pump(): void {
    for (const [part, lane] of this.#lanes) {
      if (this.#running.size >= this.#o.concurrency || this.#closing || this.#o.stopping()) return
      if (this.#running.has(part) || lane.length === 0) continue
      const run = this.#runLane(part, lane)
        .catch((error: Error) => this.#o.fatal(error))
        .finally(() => {
          this.#running.delete(part)
          if (lane.length === 0 && this.#lanes.get(part) === lane) this.#lanes.delete(part)
          this.#pump()
        })
      this.#running.set(part, run)
    }
  }

  async #runLane(part: number, lane: ConsumedRecord[]): Promise<void> {
    while (lane.length > 0 && !this.#closing && !this.#o.stopping()) {
      const record = lane.shift()!
      this.#makeRoom()
      const prepared = await this.#o.intake.prepare(record)
      // The partition left while its work was outside: its records come again from the committed offset.
      if (this.#lanes.get(part) !== lane) return
      try {
        this.#o.intake.handleRecords([record], [prepared])
      } catch (error) {
        // Nothing of it was committed: it comes again to whoever owns the partition next.
        lane.length = 0
        this.#o.fatal(error as Error)
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
}
