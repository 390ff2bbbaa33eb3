import { Producer, ProduceAcks, compatibilityPartitioner } from '@platformatic/kafka'

import { closeQuietly, toMessage, type ClientOptions } from './client.js'
import type { ProducedRecord } from './port.js'
import { produceRetryDelay } from './retry.js'

const PUBLISH_TIMEOUT_MS = 15_000
const MAX_SEND_RECORDS = 2000

interface Pending {
  records: ProducedRecord[]
  resolve: () => void
  reject: (error: Error) => void
}

/** The bus's idempotent producer, for records outside any transaction (the relay's outputs). */
export class Publisher {
  readonly #client: ClientOptions
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  #queue: Pending[] = []
  #sending = false

  constructor(client: ClientOptions) {
    this.#client = client
  }

  #getProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    // Idempotent producer: broker-side dedup of our own retries keeps per-key order intact.
    this.#producer ??= new Producer({
      ...this.#client,
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
      retries: 5,
      retryDelay: produceRetryDelay,
    })
    return this.#producer
  }

  /**
   * Publishes through one send in flight at a time (an idempotent producer must not reorder its
   * own batches); records queued meanwhile go out together in the next send.
   */
  publish(records: ProducedRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ records, resolve, reject })
      void this.#pump()
    })
  }

  async #pump(): Promise<void> {
    if (this.#sending) return
    this.#sending = true
    try {
      while (this.#queue.length > 0) {
        const batch: Pending[] = []
        let size = 0
        while (this.#queue.length > 0 && size < MAX_SEND_RECORDS) {
          const next = this.#queue.shift()!
          batch.push(next)
          size += next.records.length
        }
        try {
          await this.#sendOnce(batch.flatMap((b) => b.records))
          for (const b of batch) b.resolve()
        } catch (error) {
          for (const b of batch) b.reject(error as Error)
        }
      }
    } finally {
      this.#sending = false
    }
  }

  async #sendOnce(records: ProducedRecord[]): Promise<void> {
    const producer = this.#getProducer()
    let timer: NodeJS.Timeout | undefined
    try {
      // A send that never settles would stall the relay for good (it is single-flight): give up
      // after a while; if it did land, the retry's duplicate is skipped by message_id downstream.
      await Promise.race([
        this.#send(producer, records),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`publish did not complete within ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS))),
      ])
    } catch (error) {
      // A producer that lost its broker (a restart) can stay wedged on stale connections and
      // producer ids: drop it, so the caller's retry starts from a fresh one.
      if (this.#producer === producer) this.#producer = undefined
      void closeQuietly(() => producer.close(true))
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  async #send(producer: Producer<Buffer, Buffer, Buffer, Buffer>, records: ProducedRecord[]): Promise<void> {
    await producer.send({ messages: records.map(toMessage) })
  }

  async close(): Promise<void> {
    await this.#producer?.close().catch(() => undefined)
    this.#producer = undefined
  }
}
