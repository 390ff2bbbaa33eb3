// The narrow port every role talks to. Only this folder knows which Kafka client is used, so
// another client (kafkajs, librdkafka) can be slotted in by writing one more adapter.

export interface ConsumedRecord {
  topic: string
  partition: number
  offset: bigint
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, string>
  timestamp: bigint
}

export interface ProducedRecord {
  topic: string
  key: string
  /** null: a tombstone (deletes the key from a compacted topic). */
  value: string | Buffer | null
  headers?: Record<string, string>
  /** Pins the record to a partition; otherwise the key decides. */
  partition?: number
}

/**
 * How a partition that an instance owns commits its progress (its changelog records and consumed
 * offset): a Kafka transaction with its own transactional id per input partition, so the next
 * owner's first transaction fences this one. Its outputs go through `publish`, before.
 */
export interface PartitionWriter {
  readonly partition: number
  /**
   * Publishes the records and, when given, moves the group's committed offset of this partition to
   * `nextOffset`, atomically. Rejects with FencedError once another instance owns the partition.
   */
  commit(records: ProducedRecord[], nextOffset?: bigint): Promise<void>
}

export interface Ownership {
  /**
   * Awaited before any record of these partitions is handed to the handler: the place to restore
   * their state. Each writer is already initialised, so a previous owner is fenced off.
   */
  assigned(writers: PartitionWriter[]): Promise<void>
  /** From now on these partitions' records are not delivered, and their writers are void. */
  revoked(partitions: number[]): void
}

/** How a consumer rides out a broker that goes away for a while. */
export interface RetryInPlace {
  /**
   * For this long a failed request (a fetch, a heartbeat, metadata) is retried in place, with fresh
   * metadata and backoff, before the consumer gives up (onError): a leader or coordinator that moves,
   * or a broker that restarts, costs the member none of its partitions. 0 or unset: the client's own retries.
   */
  retryWithinMs?: number
  /** The consumer's requests keep failing and are retried in place (`lost`), or are answered again (`back`). */
  onConnection?: (event: { kind: 'lost'; reason: string } | { kind: 'back' }) => void
  /** One request of the consumer retried (`fetch`, `heartbeat`, `metadata`, …). */
  onRetry?: (operation: string) => void
}

export interface SubscribeOptions extends RetryInPlace {
  groupId: string
  /** One topic: its partitions are the unit of ownership. */
  topic: string
  /** Called one record at a time, in partition order. Offsets move only through the writers. */
  handler: (record: ConsumedRecord) => void | Promise<void>
  /** Where a group without committed offsets starts. */
  start?: 'earliest' | 'latest'
  /** Static group membership: a restarted process with the same id takes its partitions back at once. */
  instanceId?: string
  ownership: Ownership
  /** The consumer cannot go on in place: it must leave and join again. */
  onError: (error: Error) => void
}

export interface Subscription {
  /** Stops fetching, commits what was handled, leaves the group. */
  close(): Promise<void>
}

export interface ReadOptions {
  topic: string
  /** Start offset for every partition read (clamped to the partition's earliest). */
  fromOffset?: bigint
  partitions?: number[]
  /** Called per record; reading stops at the last stable offsets taken when the read began. */
  handler: (record: ConsumedRecord) => void | Promise<void>
}

export interface TailOptions extends RetryInPlace {
  topic: string
  /** Start offset per partition (index = partition); usually the end offsets taken just before. */
  fromOffsets: bigint[]
  handler: (record: ConsumedRecord) => void
  /** The tail cannot go on (the broker went away); it delivers nothing more. */
  onError?: (error: Error) => void
}

export interface TopicSpec {
  name: string
  partitions: number
  /** Overrides the bus's replication factor (SAGA_REPLICATION_FACTOR) for this topic. */
  replicationFactor?: number
  /** cleanup.policy=compact: the latest record per key is kept for good (changelogs). */
  compacted?: boolean
  /** Further topic configs at creation, e.g. { 'retention.ms': '-1' }; they win over the above. */
  config?: Record<string, string>
}

/** A topic's retention.ms, as the broker reports it (its default when the topic sets none). */
export interface TopicRetention {
  topic: string
  /** retention.ms of the topic; -1 keeps records for ever. */
  retentionMs: number
}

export interface MessageBus {
  publish(records: ProducedRecord[]): Promise<void>
  subscribe(options: SubscribeOptions): Promise<Subscription>
  /** Reads a topic without a consumer group, from an offset up to its current end. */
  read(options: ReadOptions): Promise<void>
  /** Follows a topic from given offsets without a consumer group, until closed. */
  tail(options: TailOptions): Promise<Subscription>
  /** The next offset to be written, per partition. */
  endOffsets(topic: string): Promise<bigint[]>
  /** The group's committed offset of each partition of the topic (index = partition); -1 where none. */
  committedOffsets(groupId: string, topic: string): Promise<bigint[]>
  ensureTopics(specs: TopicSpec[]): Promise<void>
  topicRetentions(topics: string[]): Promise<TopicRetention[]>
  /** The partition a key lands on, among `count` (the producers' partitioner). */
  partitionOf(key: string, count: number): number
  ping(): Promise<boolean>
  /** Asks the cluster for its metadata: resolves when it answers, rejects with why not. */
  reach(): Promise<void>
  close(): Promise<void>
}

export class TopicMismatchError extends Error {}

/** Another instance owns the partition now: this one's transaction was refused. */
export class FencedError extends Error {}

/** The broker stayed unreachable past the deadline (SAGA_BROKER_LOST_AFTER). */
export class BrokerLostError extends Error {}
