import { randomUUID } from 'node:crypto'

import { Admin, Consumer, Producer, ProduceAcks, compatibilityPartitioner, type BaseOptions, type Message } from '@platformatic/kafka'

import type { KafkaOptions } from './connection.js'
import { TopicMismatchError, type ConsumedRecord, type MessageBus, type ProducedRecord, type ReadOptions, type SubscribeOptions, type TailOptions, type Subscription, type TopicSpec } from './port.js'

const COMMIT_EVERY_MS = 50
const PUBLISH_TIMEOUT_MS = 15_000
const MAX_SEND_RECORDS = 2000
// Role consumers batch fetches: the broker answers once FETCH_MIN_BYTES are there or FETCH_WAIT_MS
// has passed. Fetching every record alone costs the broker more CPU than the saga itself (see
// docs/benchmarks.md); waiting at most 10 ms per hop buys that back under load.
const FETCH_WAIT_MS = Number(process.env.SAGA_FETCH_WAIT_MS || 10)
const FETCH_MIN_BYTES = Number(process.env.SAGA_FETCH_MIN_BYTES || 65536)
// Observers (bench, tail) want each record as soon as it lands: long polls that return at once.
const TAIL_WAIT_MS = 500

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
    await producer.send({
      messages: records.map((r) => ({
        topic: r.topic,
        key: Buffer.from(r.key),
        value: Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value),
        headers: r.headers ? new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) : undefined,
      })),
    })
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const consumer = new Consumer({
      ...this.#client('consumer'),
      groupId: options.groupId,
      autocommit: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTime: FETCH_WAIT_MS,
      minBytes: FETCH_MIN_BYTES,
      ...(options.instanceId ? { groupInstanceId: options.instanceId } : {}),
    })
    const stream = await consumer.consume({
      topics: options.topics,
      mode: 'committed',
      fallbackMode: options.start ?? 'earliest',
    })
    const pending = new Map<string, Message<Buffer, Buffer, Buffer, Buffer>>()
    let commitTimer: NodeJS.Timeout | undefined
    let failed: Error | undefined

    const flushCommits = async (): Promise<void> => {
      commitTimer = undefined
      const batch = [...pending.values()]
      pending.clear()
      await Promise.all(batch.map((m) => m.commit()))
    }
    const scheduleCommit = (message: Message<Buffer, Buffer, Buffer, Buffer>): void => {
      if (closed) return
      pending.set(`${message.topic}:${message.partition}`, message)
      commitTimer ??= setTimeout(() => {
        flushCommits().catch((error: Error) => stream.emit('error', error))
      }, COMMIT_EVERY_MS)
    }

    let closed = false
    stream.on('data', (message: Message<Buffer, Buffer, Buffer, Buffer>) => {
      // After close() began, a record is left for the next owner of the partition: handling it
      // now would schedule a commit on a closed consumer.
      if (failed || closed) return
      let result: void | Promise<void>
      try {
        result = options.handler(toRecord(message))
      } catch (error) {
        failed = error as Error
        stream.emit('error', error)
        return
      }
      if (result && typeof result.then === 'function') {
        stream.pause()
        result.then(
          () => {
            scheduleCommit(message)
            stream.resume()
          },
          (error: Error) => {
            failed = error
            stream.emit('error', error)
          },
        )
      } else {
        scheduleCommit(message)
      }
    })

    const close = async (): Promise<void> => {
      if (closed) return
      closed = true
      stream.pause()
      this.#closers.delete(close)
      if (commitTimer) clearTimeout(commitTimer)
      await flushCommits().catch(() => undefined)
      await closeQuietly(() => stream.close())
      await closeQuietly(() => consumer.close(true))
    }
    this.#closers.add(close)
    // A failed handler or commit must stop the role loudly rather than stall it silently.
    stream.on('error', (error: Error) => {
      if (!closed) options.onError(error)
    })
    return { close }
  }

  async read(options: ReadOptions): Promise<void> {
    const consumer = new Consumer({
      ...this.#client('reader'),
      groupId: `sagactl-reader-${randomUUID()}`,
      autocommit: false,
      maxWaitTime: 200,
    })
    try {
      const ends = await consumer.listOffsets({ topics: [options.topic] })
      const starts = await consumer.listOffsets({ topics: [options.topic], timestamp: -2n })
      const endOffsets = ends.get(options.topic) ?? []
      const startOffsets = starts.get(options.topic) ?? []
      const wanted = (options.partitions ?? endOffsets.map((_, p) => p)).filter((p) => p < endOffsets.length)
      const offsets = wanted
        .map((partition) => {
          const earliest = startOffsets[partition] ?? 0n
          const from = options.fromOffset !== undefined && options.fromOffset > earliest ? options.fromOffset : earliest
          return { topic: options.topic, partition, offset: from, end: endOffsets[partition] ?? 0n }
        })
        .filter((o) => o.offset < o.end)
      if (offsets.length === 0) return
      const remaining = new Map(offsets.map((o) => [o.partition, o.end]))
      const stream = await consumer.consume({
        topics: [options.topic],
        mode: 'manual',
        offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
      })
      for await (const message of stream as AsyncIterable<Message<Buffer, Buffer, Buffer, Buffer>>) {
        const end = remaining.get(message.partition)
        if (end === undefined || message.offset >= end) continue
        await options.handler(toRecord(message))
        if (message.offset + 1n >= end) remaining.delete(message.partition)
        if (remaining.size === 0) break
      }
      await closeQuietly(() => stream.close())
    } finally {
      await closeQuietly(() => consumer.close(true))
    }
  }

  async tail(options: TailOptions): Promise<Subscription> {
    const consumer = new Consumer({ ...this.#client('tail'), groupId: `sagactl-tail-${randomUUID()}`, autocommit: false, maxWaitTime: TAIL_WAIT_MS, minBytes: 1 })
    const stream = await consumer.consume({
      topics: [options.topic],
      mode: 'manual',
      offsets: options.fromOffsets.map((offset, partition) => ({ topic: options.topic, partition, offset })),
    })
    stream.on('data', (message: Message<Buffer, Buffer, Buffer, Buffer>) => options.handler(toRecord(message)))
    const close = async (): Promise<void> => {
      this.#closers.delete(close)
      await closeQuietly(() => stream.close())
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
      const metadata = await admin.metadata({ topics: specs.map((s) => s.name) })
      const wrong = specs
        .map((s) => ({ ...s, actual: metadata.topics.get(s.name)?.partitionsCount }))
        .filter((s) => s.actual !== s.partitions)
      if (wrong.length > 0) {
        throw new TopicMismatchError(
          wrong.map((w) => `topic "${w.name}" has ${w.actual ?? 'no'} partitions, sagactl needs ${w.partitions}`).join('; ') +
            '. Delete or recreate it (or use another SAGA_TOPIC_PREFIX); sagactl will not repartition an existing topic.',
        )
      }
    } finally {
      await admin.close().catch(() => undefined)
    }
  }

  async ping(): Promise<boolean> {
    const admin = new Admin({ ...this.#client('ping'), retries: 0, timeout: 2000 })
    try {
      await admin.metadata({ topics: [] })
      return true
    } catch {
      return false
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

async function closeQuietly(close: () => unknown): Promise<void> {
  try {
    await close()
  } catch {
    // Closing is best effort: the group coordinator expires what we could not leave cleanly.
  }
}
