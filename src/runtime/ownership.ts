import type { PartitionWriter } from '../kafka/port.js'
import type { QueuedRow } from './local-store.js'
import { OwnedPartition } from './owned-partition.js'

/**
 * The input partitions this instance owns now. A partition taken is not handled until it is
 * restored; one given up is gone from here at once, whatever of it is still in flight.
 */
export class Ownership {
  readonly #parts = new Map<number, OwnedPartition>()

  /** Takes the writer's partition, replacing whatever was held of it. */
  take(writer: PartitionWriter): OwnedPartition {
    const owned = new OwnedPartition(writer)
    this.#parts.set(writer.partition, owned)
    return owned
  }

  get(part: number): OwnedPartition | undefined {
    return this.#parts.get(part)
  }

  owns(part: number): boolean {
    return this.#parts.has(part)
  }

  /** Owned and restored: its records may be handled here. */
  isReady(part: number): boolean {
    return this.#parts.get(part)?.ready === true
  }

  /** Still `owned`, and not a later take of the same partition. */
  holds(part: number, owned: OwnedPartition): boolean {
    return this.#parts.get(part) === owned
  }

  /** Every partition held, restored or not. */
  partitions(): number[] {
    return [...this.#parts.keys()]
  }

  /** Partitions owned and restored, in order. */
  readyPartitions(): number[] {
    return [...this.#parts.entries()]
      .filter(([, o]) => o.ready)
      .map(([p]) => p)
      .sort((a, b) => a - b)
  }

  all(): Iterable<OwnedPartition> {
    return this.#parts.values()
  }

  /** Gives the partition up; returns what was held of it. */
  giveUp(part: number): OwnedPartition | undefined {
    const owned = this.#parts.get(part)
    owned?.release()
    this.#parts.delete(part)
    return owned
  }

  /** Rows of owned partitions whose transaction committed: each to its partition's outputs or changelog. */
  queue(rows: QueuedRow[], changelog: string): void {
    for (const row of rows) this.#parts.get(row.part)?.queue(row, row.destPartition !== null && row.topic === changelog)
  }

  /** Some partition has handled what it has not committed yet. */
  behind(): boolean {
    return [...this.#parts.values()].some((o) => o.behind)
  }

  /** The rows waiting in memory, and when the oldest was written (ms). */
  queued(): { depth: number; oldestAt: number | null } {
    let depth = 0
    let oldestAt: number | null = null
    for (const owned of this.#parts.values()) {
      depth += owned.queued
      const first = owned.oldestAt
      if (first !== null && (oldestAt === null || first < oldestAt)) oldestAt = first
    }
    return { depth, oldestAt }
  }
}
