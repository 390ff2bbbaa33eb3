import type { MessageBus, ProducedRecord, Subscription } from '../../src/kafka/port.js'

/** Stands in for Kafka in runtime tests only (the broker itself is never mocked end to end). */
export class MemoryBus implements MessageBus {
  published: ProducedRecord[] = []
  failNext = 0

  async publish(records: ProducedRecord[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('broker unavailable')
    }
    this.published.push(...records)
  }
  async subscribe(): Promise<Subscription> {
    return { close: async () => {} }
  }
  async read(): Promise<void> {}
  async tail(): Promise<Subscription> {
    return { close: async () => {} }
  }
  async ensureTopics(): Promise<void> {}
  async endOffsets(): Promise<bigint[]> {
    return []
  }
  partitionOf(): number {
    return 0
  }
  async ping(): Promise<boolean> {
    return true
  }
  async close(): Promise<void> {}
}
