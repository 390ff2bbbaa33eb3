import { FencedError, type ConsumedRecord, type MessageBus, type PartitionWriter, type ProducedRecord, type ReadOptions, type SubscribeOptions, type Subscription, type TailOptions, type TopicRetention } from '../../src/kafka/port.js'

/** One partition's writer: each commit is one "transaction" of records and an offset. */
export class MemoryWriter implements PartitionWriter {
  commits: { records: ProducedRecord[]; nextOffset?: bigint }[] = []
  fenced = false
  constructor(
    readonly partition: number,
    private readonly log: ProducedRecord[],
  ) {}

  async commit(records: ProducedRecord[], nextOffset?: bigint): Promise<void> {
    if (this.fenced) throw new FencedError(`partition ${this.partition} fenced`)
    this.commits.push({ records, ...(nextOffset !== undefined ? { nextOffset } : {}) })
    this.log.push(...records)
  }
}

/**
 * Stands in for Kafka in runtime tests only (the broker itself is never mocked end to end). It
 * keeps what was published, so a changelog written by one runtime can be read by the next, and
 * plays the group coordinator on demand (`assign`, `revoke`).
 */
export class MemoryBus implements MessageBus {
  published: ProducedRecord[] = []
  failNext = 0
  /** A send with a record this matches is refused, every time (a record the broker will never take). */
  refuse: ((record: ProducedRecord) => boolean) | undefined
  subscription: SubscribeOptions | undefined
  readonly writers = new Map<number, MemoryWriter>()

  async publish(records: ProducedRecord[]): Promise<void> {
    if (this.refuse && records.some(this.refuse)) throw new Error('record refused by the broker')
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('broker unavailable')
    }
    this.published.push(...records)
  }
  /** Times a consumer subscribed: the first join and each rejoin. */
  subscribed = 0
  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.subscription = options
    this.subscribed++
    return { close: async () => {} }
  }
  async assign(partitions: number[]): Promise<MemoryWriter[]> {
    const writers = partitions.map((p) => new MemoryWriter(p, this.published))
    for (const w of writers) this.writers.set(w.partition, w)
    await this.subscription!.ownership.assigned(writers)
    return writers
  }
  revoke(partitions: number[]): void {
    this.subscription!.ownership.revoked(partitions)
  }
  async read(options: ReadOptions): Promise<void> {
    let offset = 0n
    for (const r of this.published.filter((p) => p.topic === options.topic && (!options.partitions || options.partitions.includes(p.partition ?? 0)))) {
      const record: ConsumedRecord = { topic: r.topic, partition: r.partition ?? 0, offset: offset++, key: Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), headers: {}, timestamp: 0n }
      await options.handler(record)
    }
  }
  async tail(_options: TailOptions): Promise<Subscription> {
    return { close: async () => {} }
  }
  async ensureTopics(): Promise<void> {}

  async topicRetentions(): Promise<TopicRetention[]> {
    return []
  }
  async endOffsets(): Promise<bigint[]> {
    return []
  }
  async committedOffsets(): Promise<bigint[]> {
    return []
  }
  partitionOf(): number {
    return 0
  }
  async ping(): Promise<boolean> {
    return true
  }
  async reach(): Promise<void> {}
  async close(): Promise<void> {}
}
