import { randomUUID } from 'node:crypto'

import { Admin, ConfigResourceTypes, Consumer, FetchIsolationLevels, Producer, ProduceAcks, compatibilityPartitioner, type BaseOptions, type Message, type MessagesStream } from '@platformatic/kafka'

import { DEFAULT_FETCH_MIN_BYTES, DEFAULT_FETCH_WAIT_MS, type KafkaOptions } from './connection.js'
import { FencedError, TopicMismatchError, type ConsumedRecord, type PartitionWriter, type MessageBus, type ProducedRecord, type ReadOptions, type RetryInPlace, type SubscribeOptions, type TailOptions, type Subscription, type TopicSpec } from './port.js'

const PUBLISH_TIMEOUT_MS = 15_000
const MAX_SEND_RECORDS = 2000
// Observers (bench, tail) want each record as soon as it lands: long polls that return at once.
const TAIL_WAIT_MS = 500
// Time for the group's own revocation to arrive before a fenced partition counts as still ours.
const RECLAIM_AFTER_MS = 1_000
// How long a member that died unannounced keeps its partitions.
const SESSION_TIMEOUT_MS = 10_000
// Failed requests retried in place: 250 ms doubling to 2 s between attempts.
const RETRY_FIRST_DELAY_MS = 250
const RETRY_MAX_DELAY_MS = 2_000
// Retries in a row before the consumer counts as away from the broker: a single refused request
// (a leader that just moved) is routine, three in a row (~750 ms) are not.
const LOST_AFTER_RETRIES = 2
// Control batches (transaction markers) carry this attribute bit.
const IS_CONTROL = 1 << 5

/** The client's retryDelay: attempt 1 waits 250 ms, each next one twice as long, at most 2 s. */
export function retryDelay(attempt: number): number {
  return Math.min(RETRY_MAX_DELAY_MS, RETRY_FIRST_DELAY_MS * 2 ** Math.max(0, attempt - 1))
}

/** How many retries of `retryDelay` fill `windowMs`, not counting the time the attempts themselves take. */
export function retriesWithin(windowMs: number): number {
  let retries = 0
  for (let waited = 0; waited < windowMs; ) waited += retryDelay(++retries)
  return retries
}

/**
 * A consumer's retries in place. Each retry takes fresh metadata (the client does so on a closed
 * connection or a stale leader) and finds the coordinator again (on NOT_COORDINATOR or a lost
 * connection): fetches and heartbeats follow a moved leader or coordinator, the stream goes on.
 */
function retrySettings(options: RetryInPlace): Pick<BaseOptions, 'retries' | 'retryDelay'> {
  return options.retryWithinMs ? { retries: retriesWithin(options.retryWithinMs), retryDelay: (_client, _operation, attempt) => retryDelay(attempt) } : {}
}

/**
 * Says when the consumer is away from the broker (its requests keep failing and are retried) and
 * when it is back (the coordinator answers a heartbeat, or a join completes: call the function
 * returned). Counts every retry.
 */
function watchConnection(consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, options: RetryInPlace, closed: () => boolean): () => void {
  let away = false
  consumer.on('client:performWithRetry:retry', (operation: string, attempt: number) => {
    if (closed()) return
    options.onRetry?.(operation)
    if (away || attempt < LOST_AFTER_RETRIES) return
    away = true
    options.onConnection?.({ kind: 'lost', reason: `the consumer's ${operation} requests fail; retried in place` })
  })
  const answered = (): void => {
    if (!away || closed()) return
    away = false
    options.onConnection?.({ kind: 'back' })
  }
  consumer.on('consumer:heartbeat:end', answered)
  return answered
}

interface FlowOptions {
  topic: string
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
  /** A new stream on the same consumer: same membership, same assignment. */
  reopen: () => Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>>
  /** One record; a promise holds the next one back until it settles. */
  onMessage: (message: Message<Buffer, Buffer, Buffer, Buffer>) => void | Promise<void>
  fail: (error: Error) => void
  options: RetryInPlace
}

/**
 * Keeps a consumer's records flowing, one at a time, across failures of its stream. The client
 * ends a stream for good on a request that failed past its retries, or at once on some it does not
 * retry (a leader missing from fresh metadata while a dead broker is not yet fenced; offsets listed
 * on a join, against such a leader). Within `retryWithinMs` of the first failure a new stream is
 * opened on the same consumer, with backoff: the group membership, and so every partition, stays.
 * Past it, or without that setting, `fail` has the error.
 */
class Flow {
  readonly #o: FlowOptions
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
  #closed = false
  /** The record being handled: a new stream hands nothing over before it settles. */
  #inFlight: Promise<void> | undefined
  #failingSince: number | undefined
  #attempt = 0

  constructor(options: FlowOptions) {
    this.#o = options
    this.#stream = options.stream
    // A stream that ends leaves the topic's subscription unless another holds it: this one is
    // held for the consumer's life, so a reopened stream needs no join and no rebalance.
    options.consumer.topics.track(options.topic)
    this.#attach(options.stream)
  }

  get stream(): MessagesStream<Buffer, Buffer, Buffer, Buffer> {
    return this.#stream
  }

  #attach(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    // Offsets listed, or a record: the partitions' leaders answer again, and a failure after this
    // starts a new episode.
    const answered = (): void => {
      if (stream !== this.#stream) return
      this.#attempt = 0
      this.#failingSince = undefined
    }
    stream.on('offsets', answered)
    stream.on('data', (message: Message<Buffer, Buffer, Buffer, Buffer>) => {
      if (this.#closed || stream !== this.#stream) return
      if (this.#failingSince !== undefined) answered()
      let result: void | Promise<void>
      try {
        result = this.#o.onMessage(message)
      } catch (error) {
        this.#o.fail(error as Error)
        return
      }
      if (result && typeof result.then === 'function') {
        stream.pause()
        const settled = result.then(
          () => {
            if (!this.#closed && stream === this.#stream) stream.resume()
          },
          (error: Error) => this.#o.fail(error),
        )
        this.#inFlight = settled
      }
    })
    stream.on('error', (error: Error) => {
      if (this.#closed || stream !== this.#stream) return
      void this.#recover(error)
    })
  }

  async #recover(error: Error): Promise<void> {
    const within = this.#o.options.retryWithinMs ?? 0
    this.#failingSince ??= Date.now()
    if (this.#o.consumer.memberId === null || Date.now() - this.#failingSince >= within) {
      this.#o.fail(error)
      return
    }
    this.#o.options.onRetry?.('stream')
    await new Promise((resolve) => setTimeout(resolve, retryDelay(++this.#attempt)))
    await this.#inFlight
    if (this.#closed) return
    let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
    try {
      stream = await this.#o.reopen()
    } catch (failure) {
      await this.#recover(failure as Error)
      return
    }
    if (this.#closed) {
      await closeQuietly(() => stream.close())
      return
    }
    this.#stream = stream
    this.#attach(stream)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#stream.pause()
    await closeQuietly(() => this.#stream.close())
  }
}

/**
 * A produce refused by a partition's old leader (NOT_LEADER_OR_FOLLOWER while leadership moves) is
 * retried by the client on the metadata it already has: in a rolling restart it kept failing for
 * about 6 s, 1 s apart, and the send that followed on a fresh producer went through at once. Such a
 * refusal wrote nothing, so it is given up quickly (five retries 100 ms apart), and the relay's next
 * send starts from a fresh producer (`#sendOnce`). Other failures keep the backoff.
 */
function produceRetryDelay(_client: object, _operation: string, attempt: number, _retries: number, error: unknown): number {
  const e = error as { findBy?: (property: string, value: unknown) => unknown }
  return typeof e?.findBy === 'function' && e.findBy('hasStaleMetadata', true) ? 100 : retryDelay(attempt)
}

function toRecord(message: Message<Buffer, Buffer, Buffer, Buffer>): ConsumedRecord {
  const headers: Record<string, string> = {}
  for (const [k, v] of message.headers) headers[k.toString()] = v.toString()
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    key: message.key && message.key.length > 0 ? message.key : null,
    value: message.value ?? null,
    headers,
    timestamp: message.timestamp,
  }
}

type Connection = Pick<BaseOptions, 'bootstrapBrokers' | 'tls' | 'sasl'>

/** What every client needs to reach the cluster: bootstrap servers, TLS and SASL. */
export function connectionOptions(brokers: string[], options: KafkaOptions = {}): Connection {
  const { tls, sasl } = options
  return {
    bootstrapBrokers: brokers,
    ...(tls ? { tls: { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}), rejectUnauthorized: tls.rejectUnauthorized } } : {}),
    ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } } : {}),
  }
}

/** What the client says of a group join it completed. */
interface Join {
  assignments?: { topic: string; partitions: number[] }[] | undefined
  memberId?: string | null
  generationId?: number
}

interface Pending {
  records: ProducedRecord[]
  resolve: () => void
  reject: (error: Error) => void
}

export class PlatformaticBus implements MessageBus {
  readonly #clientId: string
  readonly #connection: Connection
  readonly #options: KafkaOptions
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  readonly #closers = new Set<() => Promise<void>>()
  #queue: Pending[] = []
  #sending = false

  constructor(brokers: string[], clientId: string, options: KafkaOptions = {}) {
    this.#clientId = clientId
    this.#connection = connectionOptions(brokers, options)
    this.#options = options
  }

  /** Every client of this bus is built from this: one place for connection settings. */
  #client(role: string): Connection & { clientId: string } {
    return { clientId: `${this.#clientId}-${role}`, ...this.#connection }
  }

  #getProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    // Idempotent producer: broker-side dedup of our own retries keeps per-key order intact.
    this.#producer ??= new Producer({
      ...this.#client('producer'),
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

  /**
   * Consumes one topic in a group. Each assigned partition gets a transactional writer (its own
   * transactional id, so initialising it fences the previous owner); the partition's records reach
   * the handler only after `ownership.assigned` has resolved for it. Offsets are never committed
   * here: they travel inside the writers' transactions.
   */
  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const consumer = new Consumer({
      ...this.#client('consumer'),
      groupId: options.groupId,
      autocommit: false,
      sessionTimeout: SESSION_TIMEOUT_MS,
      heartbeatInterval: 1_000,
      rebalanceTimeout: SESSION_TIMEOUT_MS,
      maxWaitTime: this.#options.fetch?.waitMs ?? DEFAULT_FETCH_WAIT_MS,
      minBytes: this.#options.fetch?.minBytes ?? DEFAULT_FETCH_MIN_BYTES,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      ...(options.instanceId ? { groupInstanceId: options.instanceId } : {}),
      ...retrySettings(options),
    })
    const { topic, ownership } = options
    const answered = watchConnection(consumer, options, () => closed)
    // Partition → settles once its state is restored; absent: not ours.
    const owned = new Map<number, Promise<void>>()
    const ready = new Set<number>()
    const writers = new Map<number, TransactionalWriter>()
    let closed = false
    let failed: Error | undefined
    let assigning: Promise<void> = Promise.resolve()
    // Set once consume() returns; the group's first join fires before that.
    let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined
    let flow: Flow | undefined
    // The client keeps each partition's fetch position across rebalances and, on a join, replaces
    // it only with a committed offset: a partition that came back with none would resume where this
    // member had fetched before it moved, skipping records nobody committed. Forget the position,
    // so the stream starts the partition as on a first assignment.
    const forgetPosition = (p: number): void => void (flow?.stream ?? stream)?.offsetsToFetch.delete(`${topic}:${p}`)

    const fail = (error: Error): void => {
      if (closed || failed) return
      failed = error
      options.onError(error)
    }
    // The membership the partitions in `owned` were given under.
    let member: { id: string; generation: number } | undefined
    const onJoin = (join: Join): void => {
      const assignments = join.assignments
      if (closed || !assignments) return
      answered()
      // A partition kept across a rebalance is ours throughout only if this member took part in
      // every generation: the same member id, the same or the next generation. A member that was
      // expired meanwhile (its session ran out while away) may have seen its partitions handled
      // elsewhere: it gives them all up, and restores what it is given.
      const continuous = member !== undefined && join.memberId === member.id && (join.generationId === member.generation || join.generationId === member.generation + 1)
      if (join.memberId !== undefined && join.memberId !== null && join.generationId !== undefined) member = { id: join.memberId, generation: join.generationId }
      const now = new Set(assignments.filter((a) => a.topic === topic).flatMap((a) => a.partitions))
      const revoked = [...owned.keys()].filter((p) => !continuous || !now.has(p))
      for (const p of revoked) {
        owned.delete(p)
        ready.delete(p)
        void writers.get(p)?.close()
        writers.delete(p)
        forgetPosition(p)
      }
      if (revoked.length > 0) ownership.revoked(revoked)
      const added = [...now].filter((p) => !owned.has(p)).sort((a, b) => a - b)
      if (added.length === 0) return
      for (const p of added) forgetPosition(p)
      const settled: Promise<void> = assigning.then(async () => {
        // Queued behind an earlier assignment: skip what was revoked meanwhile. A late
        // InitProducerId would fence the partition's new owner.
        const fresh = added.filter((p) => owned.get(p) === settled && !closed).map((p) => new TransactionalWriter(this.#client('tx'), `${options.groupId}.${topic}.${p}`, topic, p, consumer, () => reclaim(p)))
        for (const w of fresh) writers.set(w.partition, w)
        await Promise.all(fresh.map((w) => w.init()))
        // Revoked again while initialising: nothing to restore.
        const still = fresh.filter((w) => owned.has(w.partition) && writers.get(w.partition) === w)
        if (still.length > 0 && !closed) await ownership.assigned(still)
        for (const w of still) if (owned.has(w.partition)) ready.add(w.partition)
      })
      assigning = settled.catch(() => undefined)
      for (const p of added) owned.set(p, settled)
      settled.catch((error: Error) => fail(error))
    }
    // Fenced while the group still assigns the partition here: an InitProducerId of a member that
    // has since lost the partition landed after ours, or a transaction of ours outlived its timeout.
    // Records of the partition handled since the last commit are lost to this consumer's position,
    // so, as Kafka Streams does on a migrated task, leave and rejoin: here, by failing the consumer
    // (the role exits and its supervisor starts a fresh member, which restores what it is given).
    const reclaim = (p: number): void => {
      setTimeout(() => {
        const current = (consumer.assignments ?? []).some((a: { topic: string; partitions: number[] }) => a.topic === topic && a.partitions.includes(p))
        if (closed || !owned.has(p) || !current) return
        fail(new FencedError(`partition ${topic}[${p}] was fenced while this member still owns it; rejoining as a fresh member`))
      }, RECLAIM_AFTER_MS)
    }
    consumer.on('consumer:group:join', (payload: Join) => onJoin(payload))

    try {
      stream = await consumer.consume({
        topics: [topic],
        mode: 'committed',
        fallbackMode: options.start ?? 'earliest',
      })
    } catch (error) {
      // Never joined (no coordinator, say): nothing of it may linger, its connections included.
      closed = true
      await closeQuietly(() => consumer.close(true))
      await Promise.all([...writers.values()].map((w) => w.close()))
      throw error
    }
    onJoin({ assignments: (consumer.assignments ?? undefined) as Join['assignments'], memberId: consumer.memberId, generationId: consumer.generationId })

    const deliver = (message: Message<Buffer, Buffer, Buffer, Buffer>): void | Promise<void> => {
      // A record fetched before its partition moved away is left to the new owner.
      if (!ready.has(message.partition)) return
      return options.handler(toRecord(message))
    }
    flow = new Flow({
      topic,
      consumer,
      stream,
      // Positions come back from the group's committed offsets, as after any rebalance: what was
      // handled since is handed over again, and the runtime knows it as seen.
      reopen: () => consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: options.start ?? 'earliest' }),
      onMessage: (message) => {
        if (failed || closed) return
        const gate = owned.get(message.partition)
        if (!gate) return
        return ready.has(message.partition) ? deliver(message) : gate.then(() => deliver(message))
      },
      fail,
      options,
    })

    const close = async (): Promise<void> => {
      if (closed) return
      closed = true
      this.#closers.delete(close)
      await flow.close()
      await closeQuietly(() => consumer.close(true))
      await Promise.all([...writers.values()].map((w) => w.close()))
      writers.clear()
    }
    this.#closers.add(close)
    return { close }
  }

  /** Reads partitions up to their last stable offsets, with raw fetches: transaction markers end no record, so positions must be tracked by batch. */
  async read(options: ReadOptions): Promise<void> {
    const consumer = new Consumer({
      ...this.#client('reader'),
      groupId: `sagactl-reader-${randomUUID()}`,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    })
    try {
      const topic = options.topic
      const [ends, starts, metadata] = await Promise.all([
        consumer.listOffsets({ topics: [topic], isolationLevel: FetchIsolationLevels.READ_COMMITTED }),
        consumer.listOffsets({ topics: [topic], timestamp: -2n }),
        consumer.metadata({ topics: [topic] }),
      ])
      const endOffsets = ends.get(topic) ?? []
      const startOffsets = starts.get(topic) ?? []
      const info = metadata.topics.get(topic)
      if (!info) return
      const positions = new Map<number, { next: bigint; end: bigint }>()
      for (const partition of options.partitions ?? endOffsets.map((_, p) => p)) {
        if (partition >= endOffsets.length) continue
        const earliest = startOffsets[partition] ?? 0n
        const next = options.fromOffset !== undefined && options.fromOffset > earliest ? options.fromOffset : earliest
        const end = endOffsets[partition] ?? 0n
        if (next < end) positions.set(partition, { next, end })
      }
      while (positions.size > 0) {
        const byLeader = new Map<number, number[]>()
        for (const partition of positions.keys()) {
          const leader = info.partitions[partition]!.leader
          byLeader.set(leader, [...(byLeader.get(leader) ?? []), partition])
        }
        for (const [node, partitions] of byLeader) {
          const response = await consumer.fetch({
            node,
            maxWaitTime: 200,
            minBytes: 1,
            maxBytes: 8 * 1024 * 1024,
            isolationLevel: FetchIsolationLevels.READ_COMMITTED,
            topics: [{ topicId: info.id, partitions: partitions.map((partition) => ({ partition, fetchOffset: positions.get(partition)!.next, partitionMaxBytes: 4 * 1024 * 1024, currentLeaderEpoch: -1, lastFetchedEpoch: -1 })) }],
          })
          for (const answer of response.responses.flatMap((r) => r.partitions)) {
            const position = positions.get(answer.partitionIndex)
            if (!position) continue
            for (const batch of answer.records ?? []) {
              const last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
              if (!(batch.attributes & IS_CONTROL)) {
                for (const r of batch.records) {
                  const offset = batch.firstOffset + BigInt(r.offsetDelta)
                  if (offset < position.next || offset >= position.end) continue
                  const headers: Record<string, string> = {}
                  for (const [k, v] of r.headers) if (k) headers[k.toString()] = v?.toString() ?? ''
                  await options.handler({ topic, partition: answer.partitionIndex, offset, key: r.key && r.key.length > 0 ? r.key : null, value: r.value ?? null, headers, timestamp: batch.firstTimestamp + r.timestampDelta })
                }
              }
              if (last + 1n > position.next) position.next = last + 1n
            }
            if (position.next >= position.end) positions.delete(answer.partitionIndex)
          }
        }
      }
    } finally {
      await closeQuietly(() => consumer.close(true))
    }
  }

  async tail(options: TailOptions): Promise<Subscription> {
    const consumer = new Consumer({ ...this.#client('tail'), groupId: `sagactl-tail-${randomUUID()}`, autocommit: false, maxWaitTime: TAIL_WAIT_MS, minBytes: 1, isolationLevel: FetchIsolationLevels.READ_COMMITTED, ...retrySettings(options) })
    let closed = false
    watchConnection(consumer, options, () => closed)
    // Where each partition goes on: past the last record handed over, or where the tail began.
    const next = [...options.fromOffsets]
    const open = (): Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>> =>
      consumer.consume({ topics: [options.topic], mode: 'manual', offsets: next.map((offset, partition) => ({ topic: options.topic, partition, offset })) })
    let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
    try {
      stream = await open()
    } catch (error) {
      await closeQuietly(() => consumer.close(true))
      throw error
    }
    const flow = new Flow({
      topic: options.topic,
      consumer,
      stream,
      reopen: open,
      onMessage: (message) => {
        if (closed) return
        next[message.partition] = message.offset + 1n
        options.handler(toRecord(message))
      },
      fail: (error) => {
        if (closed) return
        closed = true
        options.onError?.(error)
      },
      options,
    })
    const close = async (): Promise<void> => {
      closed = true
      this.#closers.delete(close)
      await flow.close()
      await closeQuietly(() => consumer.close(true))
    }
    this.#closers.add(close)
    return { close }
  }

  async endOffsets(topic: string): Promise<bigint[]> {
    const consumer = new Consumer({ ...this.#client('offsets'), groupId: `sagactl-offsets-${randomUUID()}` })
    try {
      return (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? []
    } finally {
      await closeQuietly(() => consumer.close(true))
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<bigint[]> {
    const partitions = (await this.endOffsets(topic)).map((_, p) => p)
    const admin = new Admin(this.#client('admin'))
    try {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: [{ name: topic, partitionIndexes: partitions }] }] })
      const committed = partitions.map(() => -1n)
      for (const p of group?.topics.find((t) => t.name === topic)?.partitions ?? []) committed[p.partitionIndex] = p.committedOffset
      return committed
    } finally {
      await admin.close().catch(() => undefined)
    }
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    const admin = new Admin(this.#client('admin'))
    try {
      const existing = new Set(await admin.listTopics())
      const missing = specs.filter((s) => !existing.has(s.name))
      for (const spec of missing) {
        try {
          await admin.createTopics({ topics: [spec.name], partitions: spec.partitions, replicas: spec.replicationFactor ?? this.#options.replicationFactor ?? 1, configs: topicConfigs(spec, this.#options) })
        } catch (error) {
          // Another role may have created it a moment ago; the partition check below decides.
          if (!/already exists/i.test(String((error as Error).message) + JSON.stringify((error as { errors?: unknown }).errors ?? ''))) throw error
        }
      }
      await this.#requireCompaction(admin, specs.filter((s) => s.compacted))
      const metadata = await admin.metadata({ topics: specs.map((s) => s.name) })
      const wrong = specs
        .map((s) => ({ ...s, actual: metadata.topics.get(s.name)?.partitionsCount }))
        .filter((s) => s.actual !== s.partitions)
      if (wrong.length > 0) {
        throw new TopicMismatchError(
          wrong.map((w) => `topic "${w.name}" has ${w.actual ?? 'no'} partitions, sagactl needs ${w.partitions}`).join('; ') +
            '. Give every role the SAGA_PARTITIONS (and saga) the topics were created with, or delete and recreate them (or use another SAGA_TOPIC_PREFIX); sagactl will not repartition an existing topic.',
        )
      }
    } finally {
      await admin.close().catch(() => undefined)
    }
  }

  /** A changelog that is not compacted grows for ever and restores ever slower: refuse it. */
  async #requireCompaction(admin: Admin, specs: TopicSpec[]): Promise<void> {
    if (specs.length === 0) return
    const described = await admin.describeConfigs({ resources: specs.map((s) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: s.name, configurationKeys: ['cleanup.policy'] })) })
    const loose = described.filter((d) => !String(d.configs.find((c) => c.name === 'cleanup.policy')?.value ?? '').includes('compact'))
    if (loose.length > 0) {
      throw new TopicMismatchError(`topic${loose.length > 1 ? 's' : ''} ${loose.map((d) => `"${d.resourceName}"`).join(', ')} must have cleanup.policy=compact (a changelog); set it with kafka-configs.sh or delete the topic so sagactl creates it`)
    }
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

  async reach(): Promise<void> {
    const admin = new Admin({ ...this.#client('ping'), retries: 0, timeout: 2000 })
    try {
      await admin.metadata({ topics: [] })
    } finally {
      await admin.close().catch(() => undefined)
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#closers].map((c) => c()))
    await this.#producer?.close().catch(() => undefined)
    this.#producer = undefined
  }
}

function topicConfigs(spec: TopicSpec, options: KafkaOptions): { name: string; value: string }[] {
  const config: Record<string, string> = {
    ...(options.minInsyncReplicas !== undefined ? { 'min.insync.replicas': String(options.minInsyncReplicas) } : {}),
    ...(spec.compacted ? { 'cleanup.policy': 'compact' } : {}),
    ...spec.config,
  }
  return Object.entries(config).map(([name, value]) => ({ name, value }))
}

function toMessage(r: ProducedRecord): { topic: string; key: Buffer; value: Buffer | undefined; headers?: Map<Buffer, Buffer>; partition?: number } {
  return {
    topic: r.topic,
    key: Buffer.from(r.key),
    // A null value is a tombstone on a compacted topic.
    value: r.value === null ? undefined : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value),
    ...(r.headers ? { headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) } : {}),
    ...(r.partition !== undefined ? { partition: r.partition } : {}),
  }
}

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

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}

// Back-to-back transactions of one partition meet CONCURRENT_TRANSACTIONS most of the time; on a
// loaded machine five retries (10 + 20 + … ms) ran out while markers were still being written.
const TRANSACTION_RETRIES = 20

// The coordinator answers CONCURRENT_TRANSACTIONS while it still writes the previous transaction's
// markers, which takes milliseconds: retrying after the general 200 ms made one transaction in
// six of a busy partition wait that long. The Java client retries this case after 20 ms too.
function transactionRetryDelay(_client: unknown, _operation: string, attempt: number, _retries: number, error: unknown): number {
  const e = error as { findBy?: (property: string, value: unknown) => unknown }
  const concurrent = typeof e?.findBy === 'function' && Boolean(e.findBy('apiId', 'CONCURRENT_TRANSACTIONS'))
  return concurrent ? 10 * attempt : 200
}

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
class TransactionalWriter implements PartitionWriter {
  readonly #client: Connection & { clientId: string }
  readonly #transactionalId: string
  readonly #topic: string
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly #onFenced: () => void
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  #fenced = false
  /** Closed by a revocation: nothing of it matters any more, its errors included. */
  #closed = false

  constructor(client: Connection & { clientId: string }, transactionalId: string, topic: string, readonly partition: number, consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, onFenced: () => void) {
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

async function closeQuietly(close: () => unknown): Promise<void> {
  try {
    await close()
  } catch {
    // Closing is best effort: the group coordinator expires what we could not leave cleanly.
  }
}
