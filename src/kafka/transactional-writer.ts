import { Producer, ProduceAcks, compatibilityPartitioner, type Consumer, type Message } from '@platformatic/kafka'

import { closeQuietly, toMessage, withTimeout, type ClientOptions } from './client.js'
import { FencedError, type PartitionWriter, type ProducedRecord } from './port.js'
import { TRANSACTION_RETRIES, transactionRetryDelay } from './retry.js'

// @platformatic/kafka (1.35 and 2.12 alike) sends producer id 0 / epoch 0 in InitProducerId unless told otherwise,
// and the broker answers PRODUCER_FENCED to any new process that reuses a transactional id whose
// producer id is not 0. -1/-1 means "a new producer": the broker bumps the epoch and fences the old one.
const UNKNOWN_PRODUCER = { producerId: -1n, producerEpoch: -1 }

// The broker aborts a transaction open longer than the producer's `timeout` (the client sends it as
// transaction.timeout.ms; its default of 5 s is too short under load). A call is given up only
// later than that, so a transaction given up on can no longer commit behind our back.
const PRODUCER_TIMEOUT_MS = 20_000
const TRANSACTION_TIMEOUT_MS = 30_000
const INIT_ATTEMPTS = 8

const FENCING = ['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', 'FENCED_INSTANCE_ID']

function isFencing(error: unknown): boolean {
  const e = error as { findBy?: (property: string, value: unknown) => unknown }
  if (typeof e?.findBy !== 'function') return false
  return Boolean(e.findBy('producerFenced', true)) || FENCING.some((code) => e.findBy!('apiId', code))
}

/**
 * A partition's transactional producer. Its transactional id is the same for every owner of the
 * partition, so the broker lets only the newest initialised producer finish a transaction.
 */
export class TransactionalWriter implements PartitionWriter {
  readonly #client: ClientOptions
  readonly #transactionalId: string
  readonly #topic: string
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly #onFenced: () => void
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  #fenced = false
  /** Closed by a revocation: nothing of it matters any more, its errors included. */
  #closed = false

  constructor(client: ClientOptions, transactionalId: string, topic: string, readonly partition: number, consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, onFenced: () => void) {
    this.#onFenced = onFenced
    this.#client = client
    this.#transactionalId = transactionalId
    this.#topic = topic
    this.#consumer = consumer
  }

  #make(): Producer<Buffer, Buffer, Buffer, Buffer> {
    this.#producer ??= new Producer({
      ...this.#client,
      idempotent: true,
      transactionalId: this.#transactionalId,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
      retries: TRANSACTION_RETRIES,
      retryDelay: transactionRetryDelay,
      timeout: PRODUCER_TIMEOUT_MS,
    })
    return this.#producer
  }

  /**
   * InitProducerId: bumps the epoch, which aborts or completes the previous owner's open
   * transaction. Retried, since the coordinator answers "concurrent transactions" until it has.
   */
  async init(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const producer = this.#make()
      try {
        const transaction = await withTimeout(producer.beginTransaction(UNKNOWN_PRODUCER), TRANSACTION_TIMEOUT_MS, 'initialising a transactional producer')
        await transaction.cancel()
        return
      } catch (error) {
        this.#discard(producer)
        // Revoked while initialising (2.x answers the close of a producer still retrying
        // InitProducerId, say on NOT_COORDINATOR, with "client closed"): the partition is not ours,
        // and the caller skips writers revoked meanwhile. Not a reason for the member to fail.
        if (this.#closed) return
        if (attempt >= INIT_ATTEMPTS || this.#fenced) throw error
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
      }
    }
  }

  #discard(producer: Producer<Buffer, Buffer, Buffer, Buffer>): void {
    if (this.#producer === producer) this.#producer = undefined
    void closeQuietly(() => producer.close(true))
  }

  async commit(records: ProducedRecord[], nextOffset?: bigint): Promise<void> {
    if (this.#fenced) throw new FencedError(`partition ${this.#topic}[${this.partition}] is owned by another instance`)
    if (records.length === 0 && nextOffset === undefined) return
    const producer = this.#make()
    const run = async (): Promise<void> => {
      const transaction = await producer.beginTransaction(UNKNOWN_PRODUCER)
      const consumer = this.#consumer
      // The transaction coordinator takes one change at a time: register the group first, then send
      // the records (AddPartitionsToTxn, Produce) while the group coordinator takes the offset.
      if (nextOffset !== undefined) await transaction.addConsumer(consumer)
      await Promise.all([
        records.length > 0 ? transaction.send({ messages: records.map(toMessage) }) : undefined,
        nextOffset === undefined
          ? undefined
          : // The group generation travels with the offset: a member that lost the partition is refused.
            transaction.addOffset({
              topic: this.#topic,
              partition: this.partition,
              offset: nextOffset - 1n,
              metadata: { consumer: { groupId: consumer.groupId, generationId: consumer.generationId, memberId: consumer.memberId, coordinatorId: consumer.coordinatorId } },
            } as unknown as Message<Buffer, Buffer, Buffer, Buffer>),
      ])
      await transaction.commit()
    }
    try {
      // A call that never settles would stall this partition for good: give up, and let a fresh
      // producer (same transactional id) abort whatever the old one left open.
      await withTimeout(run(), TRANSACTION_TIMEOUT_MS, 'a transaction')
    } catch (error) {
      if (isFencing(error)) {
        this.#fenced = true
        this.#discard(producer)
        this.#onFenced()
        throw new FencedError(`partition ${this.#topic}[${this.partition}] was taken over by another instance: ${(error as Error).message}`)
      }
      // A producer left in a half-finished transaction cannot begin another: start afresh.
      this.#discard(producer)
      throw error
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#fenced = true
    const producer = this.#producer
    this.#producer = undefined
    if (producer) await closeQuietly(() => producer.close(true))
  }
}
