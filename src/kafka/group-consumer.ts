import { FetchIsolationLevels, type Message, type MessagesStream } from '@platformatic/kafka'

import { closeQuietly, toRecord, type ClientFactory } from './client.js'
import { CommittedConsumer } from './committed-only.js'
import { DEFAULT_FETCH_MIN_BYTES, DEFAULT_FETCH_WAIT_MS, type KafkaOptions } from './connection.js'
import { Flow } from './flow.js'
import { FencedError, type SubscribeOptions, type Subscription } from './port.js'
import { retrySettings, watchConnection } from './retry.js'
import { TransactionalWriter } from './transactional-writer.js'

// Time for the group's own revocation to arrive before a fenced partition counts as still ours.
const RECLAIM_AFTER_MS = 1_000
// How long a member that died unannounced keeps its partitions.
const SESSION_TIMEOUT_MS = 10_000

/** What the client says of a group join it completed. */
interface Join {
  assignments?: { topic: string; partitions: number[] }[] | undefined
  memberId?: string | null
  generationId?: number
}

/**
 * Consumes one topic in a group. Each assigned partition gets a transactional writer (its own
 * transactional id, so initialising it fences the previous owner); the partition's records reach
 * the handler only after `ownership.assigned` has resolved for it. Offsets are never committed
 * here: they travel inside the writers' transactions.
 */
export async function subscribe(client: ClientFactory, kafka: KafkaOptions, closers: Set<() => Promise<void>>, options: SubscribeOptions): Promise<Subscription> {
  const consumer = new CommittedConsumer({
    ...client('consumer'),
    groupId: options.groupId,
    autocommit: false,
    sessionTimeout: SESSION_TIMEOUT_MS,
    heartbeatInterval: 1_000,
    rebalanceTimeout: SESSION_TIMEOUT_MS,
    maxWaitTime: kafka.fetch?.waitMs ?? DEFAULT_FETCH_WAIT_MS,
    minBytes: kafka.fetch?.minBytes ?? DEFAULT_FETCH_MIN_BYTES,
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
  const forgetPosition = (p: number): void => {
    ;(flow?.stream ?? stream)?.offsetsToFetch.delete(`${topic}:${p}`)
    flow?.forget(p)
  }

  const fail = (error: Error): void => {
    if (closed || failed) return
    failed = error
    options.onError(error)
  }
  // The client tells of a rejoin it could not complete (after a heartbeat refused in a rebalance,
  // say, or a connection closed under it) by an 'error' event: the member is out of its group.
  // Unheard, that event ends the process; it was seen ending a role being stopped mid-rebalance.
  consumer.on('error', (error: Error) => fail(error))
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
      const fresh = added.filter((p) => owned.get(p) === settled && !closed).map((p) => new TransactionalWriter(client('tx'), `${options.groupId}.${topic}.${p}`, topic, p, consumer, () => reclaim(p)))
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
    flow?.handed(message.partition, message.offset)
    return options.handler(toRecord(message))
  }
  flow = new Flow({
    topic,
    consumer,
    stream,
    // A partition kept here goes on where its records were handed over (flow.ts); one given since
    // starts at the group's committed offset, like any partition restored.
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
    closers.delete(close)
    await flow.close()
    await closeQuietly(() => consumer.close(true))
    await Promise.all([...writers.values()].map((w) => w.close()))
    writers.clear()
  }
  closers.add(close)
  return { close }
}
