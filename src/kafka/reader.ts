import { randomUUID } from 'node:crypto'

import { FetchIsolationLevels, type MessagesStream } from '@platformatic/kafka'

import { closeQuietly, toRecord, type ClientFactory } from './client.js'
import { CommittedConsumer } from './committed-only.js'
import { Flow } from './flow.js'
import type { ReadOptions, Subscription, TailOptions } from './port.js'
import { retrySettings, watchConnection } from './retry.js'

// Observers (bench, tail) want each record as soon as it lands: long polls that return at once.
const TAIL_WAIT_MS = 500
// Control batches (transaction markers) carry this attribute bit.
const IS_CONTROL = 1 << 5

/** Reads partitions up to their last stable offsets, with raw fetches: transaction markers end no record, so positions must be tracked by batch. */
export async function read(client: ClientFactory, options: ReadOptions): Promise<void> {
  const consumer = new CommittedConsumer({
    ...client('reader'),
    groupId: `sagactl-reader-${randomUUID()}`,
    autocommit: false,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  })
  // It never joins its group; anything the client still reports as an event, the fetch in flight
  // fails with too, and that failure is the read's.
  consumer.on('error', () => undefined)
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

export async function tail(client: ClientFactory, closers: Set<() => Promise<void>>, options: TailOptions): Promise<Subscription> {
  const consumer = new CommittedConsumer({ ...client('tail'), groupId: `sagactl-tail-${randomUUID()}`, autocommit: false, maxWaitTime: TAIL_WAIT_MS, minBytes: 1, isolationLevel: FetchIsolationLevels.READ_COMMITTED, ...retrySettings(options) })
  let closed = false
  watchConnection(consumer, options, () => closed)
  // A rejoin the client could not complete comes as an 'error' event (see group-consumer.ts).
  consumer.on('error', (error: Error) => {
    if (closed) return
    closed = true
    options.onError?.(error)
  })
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
    closers.delete(close)
    await flow.close()
    await closeQuietly(() => consumer.close(true))
  }
  closers.add(close)
  return { close }
}
