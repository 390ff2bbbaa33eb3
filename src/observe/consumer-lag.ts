import { Gauge, type Registry } from 'prom-client'

import type { ConsumedRecord } from '../kafka/port.js'

// Apart from the counters: lag is the one metric that asks the broker, so its caching and its
// record counting live here, where a scrape's cost to the cluster can be judged in one place.

// Lag needs the broker: asking it at most this often keeps a busy scraper from becoming load.
const END_OFFSETS_TTL_MS = 2000
// A gap that stays put between scrapes is counted record by record, up to this size.
const COUNT_GAP_UP_TO = 1000n

export interface LagSources {
  /** The input partitions this instance owns; null: all of them (a role outside a group). */
  owned(): number[] | null
  endOffsets(topic: string): Promise<bigint[]>
  /** Counts the committed records of a partition from `from` to its end (the bus's read). */
  countRecords(topic: string, partition: number, from: bigint): Promise<number>
}

/** sagactl_consumer_lag_records, from the offsets this process handled and the partitions' ends. */
export class ConsumerLag {
  readonly #sources: LagSources
  /** Next offset to handle, per "topic|partition", as seen by this process. */
  readonly #handled = new Map<string, { topic: string; partition: number; next: bigint }>()
  readonly #ends = new Map<string, { at: number; offsets: Promise<bigint[]> }>()
  /** Per partition, the last (next, end) pair seen and, once counted, the records really in between. */
  readonly #gaps = new Map<string, { next: bigint; end: bigint; records?: number }>()

  constructor(sources: LagSources, registers: Registry[]) {
    this.#sources = sources
    const handled = this.#handled
    const lagOf = (topic: string): Promise<bigint[]> => this.#endOffsets(topic)
    const lag = (topic: string, partition: number, next: bigint, end: bigint): Promise<number> => this.#lag(topic, partition, next, end)
    new Gauge({
      name: 'sagactl_consumer_lag_records',
      help: "Per input partition this process owns: records from the next offset to handle to the partition's end. While the gap moves it is the offset difference (transaction markers included); a gap that stays put between two scrapes is counted record by record, so a caught-up partition reads 0.",
      labelNames: ['topic', 'partition'],
      registers,
      async collect() {
        this.reset()
        const owned = sources.owned()
        const topics = new Set([...handled.values()].map((h) => h.topic))
        for (const topic of topics) {
          const ends = await lagOf(topic).catch(() => undefined)
          if (!ends) continue
          for (const h of handled.values()) {
            if (h.topic !== topic || (owned && !owned.includes(h.partition))) continue
            const end = ends[h.partition]
            if (end !== undefined) this.set({ topic, partition: String(h.partition) }, await lag(topic, h.partition, h.next, end))
          }
        }
      },
    })
  }

  handled(record: ConsumedRecord): void {
    const key = `${record.topic}|${record.partition}`
    const next = record.offset + 1n
    const known = this.#handled.get(key)
    if (known) known.next = next
    else this.#handled.set(key, { topic: record.topic, partition: record.partition, next })
  }

  /**
   * Offsets overstate lag by the transaction markers they hold: a caught-up partition whose last
   * write was a transaction is one offset short of its end. Counting the records settles it, and is
   * done only for a gap that has not moved since the last scrape (a quiet or a stuck partition).
   */
  async #lag(topic: string, partition: number, next: bigint, end: bigint): Promise<number> {
    const gap = end > next ? end - next : 0n
    const key = `${topic}|${partition}`
    const last = this.#gaps.get(key)
    const still = last !== undefined && last.next === next && last.end === end
    if (!still) this.#gaps.set(key, { next, end })
    if (gap === 0n || !still || gap > COUNT_GAP_UP_TO) return Number(gap)
    if (last.records === undefined) {
      last.records = await this.#sources.countRecords(topic, partition, next).catch(() => undefined)
    }
    return last.records ?? Number(gap)
  }

  #endOffsets(topic: string): Promise<bigint[]> {
    const cached = this.#ends.get(topic)
    if (cached && Date.now() - cached.at < END_OFFSETS_TTL_MS) return cached.offsets
    const offsets = this.#sources.endOffsets(topic)
    this.#ends.set(topic, { at: Date.now(), offsets })
    offsets.catch(() => this.#ends.delete(topic))
    return offsets
  }
}
