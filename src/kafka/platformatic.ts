import { compatibilityPartitioner } from '@platformatic/kafka'

import { committedOffsets, endOffsets, ensureTopics, reach, topicRetentions } from './admin.js'
import { connectionOptions, type ClientOptions, type Connection } from './client.js'
import type { KafkaOptions } from './connection.js'
import { subscribe } from './group-consumer.js'
import type { MessageBus, ProducedRecord, ReadOptions, SubscribeOptions, Subscription, TailOptions, TopicRetention, TopicSpec } from './port.js'
import { Publisher } from './publisher.js'
import { read, tail } from './reader.js'

/**
 * The port on @platformatic/kafka: the only place that builds its clients, each through `#client`.
 * The work is done by one module per job: the group consumer, the reader, the publisher, admin.
 */
export class PlatformaticBus implements MessageBus {
  readonly #clientId: string
  readonly #connection: Connection
  readonly #options: KafkaOptions
  readonly #publisher: Publisher
  /** Open subscriptions and tails, closed with the bus. */
  readonly #closers = new Set<() => Promise<void>>()

  constructor(brokers: string[], clientId: string, options: KafkaOptions = {}) {
    this.#clientId = clientId
    this.#connection = connectionOptions(brokers, options)
    this.#options = options
    this.#publisher = new Publisher(this.#client('producer'))
  }

  /** Every client of this bus is built from this: one place for connection settings. */
  readonly #client = (role: string): ClientOptions => ({ clientId: `${this.#clientId}-${role}`, ...this.#connection })

  publish(records: ProducedRecord[]): Promise<void> {
    return this.#publisher.publish(records)
  }

  subscribe(options: SubscribeOptions): Promise<Subscription> {
    return subscribe(this.#client, this.#options, this.#closers, options)
  }

  read(options: ReadOptions): Promise<void> {
    return read(this.#client, options)
  }

  tail(options: TailOptions): Promise<Subscription> {
    return tail(this.#client, this.#closers, options)
  }

  endOffsets(topic: string): Promise<bigint[]> {
    return endOffsets(this.#client, topic)
  }

  committedOffsets(groupId: string, topic: string): Promise<bigint[]> {
    return committedOffsets(this.#client, groupId, topic)
  }

  ensureTopics(specs: TopicSpec[]): Promise<void> {
    return ensureTopics(this.#client, this.#options, specs)
  }

  topicRetentions(topics: string[]): Promise<TopicRetention[]> {
    return topicRetentions(this.#client, topics)
  }

  partitionOf(key: string, count: number): number {
    return compatibilityPartitioner(undefined as never, Buffer.from(key)) % count
  }

  async ping(): Promise<boolean> {
    return this.reach().then(
      () => true,
      () => false,
    )
  }

  reach(): Promise<void> {
    return reach(this.#client)
  }

  async close(): Promise<void> {
    await Promise.all([...this.#closers].map((c) => c()))
    await this.#publisher.close()
  }
}
