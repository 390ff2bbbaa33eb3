import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'

import { Admin, FetchIsolationLevels, Producer, ProduceAcks } from '@platformatic/kafka'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'

import { PlatformaticBus } from '../../src/kafka/platformatic.js'
import { FencedError, TopicMismatchError, type ConsumedRecord, type PartitionWriter, type Subscription } from '../../src/kafka/port.js'
import { caughtUp } from '../../src/ops/quiet.js'
import { waitFor } from './harness.js'

// The adapter driven directly, with no role on top: the guarantees the README's "Scaling out"
// section rests on, each on fresh topics and a fresh group.

const brokers = inject('brokers').split(',')
const MEMBER = fileURLToPath(new URL('./fixtures/member.mjs', import.meta.url))
// A member that dies unannounced keeps its partitions for the adapter's session timeout (10 s),
// and a loaded machine adds to that.
const TAKEOVER_MS = 60_000

let admin: Admin
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(() => {
  admin = new Admin({ clientId: 'sagactl-test-adapter-admin', bootstrapBrokers: brokers })
})
afterAll(async () => {
  await admin.close()
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

function openTestBus(name: string): PlatformaticBus {
  const bus = new PlatformaticBus(brokers, `sagactl-test-adapter-${name}`)
  cleanups.push(() => bus.close())
  return bus
}

interface Fixture {
  bus: PlatformaticBus
  input: string
  output: string
  group: string
}

async function fresh(inputPartitions = 1): Promise<Fixture> {
  const prefix = `t${randomUUID().slice(0, 8)}.adapter`
  const f = { bus: openTestBus('test'), input: `${prefix}.input`, output: `${prefix}.output`, group: `${prefix}.group` }
  await f.bus.ensureTopics([
    { name: f.input, partitions: inputPartitions },
    { name: f.output, partitions: 1 },
  ])
  return f
}

/** The group's committed offset of a partition; -1n when none. Pending transactional offsets do not count. */
async function committed(f: Fixture, partition = 0): Promise<bigint> {
  const [group] = await admin.listConsumerGroupOffsets({ groups: [{ groupId: f.group, topics: [{ name: f.input, partitionIndexes: [partition] }] }] })
  return group?.topics.find((t) => t.name === f.input)?.partitions.find((p) => p.partitionIndex === partition)?.committedOffset ?? -1n
}

/** What a read_committed reader sees of a topic. */
async function visible(bus: PlatformaticBus, topic: string): Promise<string[]> {
  const values: string[] = []
  await bus.read({ topic, handler: (r) => void values.push(r.value!.toString()) })
  return values
}

/** A partition's high watermark: counts records (and markers) of open and aborted transactions too. */
async function written(topic: string, partition = 0): Promise<bigint> {
  const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp: -1n }] }], isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED })
  return listed!.partitions.find((p) => p.partitionIndex === partition)!.offset
}

interface Member {
  readonly handled: ConsumedRecord[]
  /** Every writer the member was given, by partition; a revoked one stays, so a test can try it. */
  readonly writers: Map<number, PartitionWriter>
  readonly owned: Set<number>
  /** Each revocation, with how many records had been handed over when it came. */
  readonly revocations: { partitions: number[]; handledBefore: number }[]
  readonly errors: Error[]
  /** Leaves the group cleanly (Subscription.close). */
  leave(): Promise<void>
}

/**
 * A member of the group in this process, recording what the adapter hands it; commits only when
 * the test does. `then` runs after a record is recorded: a pending promise holds the member there.
 */
async function join(f: Fixture, name: string, options: { instanceId?: string; then?: (record: ConsumedRecord) => void | Promise<void> } = {}): Promise<Member> {
  const { instanceId, then } = options
  const member: Member = { handled: [], writers: new Map(), owned: new Set(), revocations: [], errors: [], leave: () => subscription.close() }
  const subscription: Subscription = await openTestBus(name).subscribe({
    groupId: f.group,
    topic: f.input,
    ...(instanceId ? { instanceId } : {}),
    handler: (record) => {
      member.handled.push(record)
      return then?.(record)
    },
    ownership: {
      assigned: async (writers) => {
        for (const w of writers) {
          member.writers.set(w.partition, w)
          member.owned.add(w.partition)
        }
      },
      revoked: (partitions) => {
        member.revocations.push({ partitions, handledBefore: member.handled.length })
        for (const p of partitions) member.owned.delete(p)
      },
    },
    onError: (error) => void member.errors.push(error),
  })
  cleanups.push(() => subscription.close())
  return member
}

function writerOf(member: Member, partition = 0): PartitionWriter {
  const writer = member.writers.get(partition)
  if (!writer) throw new Error(`no writer for partition ${partition}`)
  return writer
}

function values(records: ConsumedRecord[]): string[] {
  return records.map((r) => r.value!.toString())
}

interface MemberLine {
  event: 'subscribed' | 'assigned' | 'revoked' | 'handled' | 'committed' | 'dying' | 'error'
  partition?: number
  offset?: string
  value?: string
  message?: string
}

/** A member in a child process (test/e2e/fixtures/member.mjs), so that it can die for real. */
function spawnMember(f: Fixture, instanceId?: string): { lines: MemberLine[]; exited: Promise<NodeJS.Signals | null>; kill: () => Promise<NodeJS.Signals | null> } {
  const env = { ...process.env, MEMBER_BROKERS: brokers.join(','), MEMBER_GROUP: f.group, MEMBER_TOPIC: f.input, MEMBER_OUTPUT: f.output, ...(instanceId ? { MEMBER_INSTANCE_ID: instanceId } : {}) }
  const child = spawn(process.execPath, [MEMBER], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: MemberLine[] = []
  const raw: string[] = []
  let rest = ''
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n')
    rest = parts.pop()!
    for (const line of parts) lines.push(JSON.parse(line) as MemberLine)
  })
  child.stderr.on('data', (chunk: Buffer) => raw.push(chunk.toString()))
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  const kill = (): Promise<NodeJS.Signals | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited
  }
  cleanups.push(kill)
  void exited.then(() => {
    if (raw.length > 0) console.error(`member.mjs stderr:\n${raw.join('')}`)
  })
  return { lines, exited, kill }
}

describe('the Kafka adapter on a real broker', () => {
  describe('an offset is committed only with its record’s transaction', () => {
    it('leaves the group offset and the output untouched until the writer commits, then moves both to what the writer gave', async () => {
      const f = await fresh()
      const a = await join(f, 'a')
      await f.bus.publish([
        { topic: f.input, key: 'k', value: 'r0', partition: 0 },
        { topic: f.input, key: 'k', value: 'r1', partition: 0 },
      ])
      const [r0, r1] = await waitFor(() => a.handled.length >= 2 && a.handled, 'both records handled')
      expect(values([r0!, r1!])).toEqual(['r0', 'r1'])

      // Handled, and the consumer has fetched past both: nothing is committed on its behalf.
      expect(await committed(f)).toBe(-1n)
      expect(await visible(f.bus, f.output)).toEqual([])

      // Only r0 is committed: the offset is the writer's, not the consumer's position.
      await writerOf(a).commit([{ topic: f.output, key: 'k', value: 'out:r0' }], r0!.offset + 1n)
      await waitFor(async () => (await committed(f)) === r0!.offset + 1n && (await visible(f.bus, f.output)).length === 1, 'the offset and the output to become visible')
      expect(await committed(f)).toBe(r1!.offset)
      expect(await visible(f.bus, f.output)).toEqual(['out:r0'])
      expect(a.errors).toEqual([])
    })

    it('moves neither when the transaction fails after its output and offset were sent; the writer’s next transaction aborts it and commits', async () => {
      const f = await fresh()
      // A record above the broker's limit fails its partition's produce, after the other records
      // of the same transaction were appended.
      const tooSmall = `${f.output}.small`
      await f.bus.ensureTopics([{ name: tooSmall, partitions: 1, config: { 'max.message.bytes': '1024' } }])
      const a = await join(f, 'a')
      await f.bus.publish([
        { topic: f.input, key: 'k', value: 'r0', partition: 0 },
        { topic: f.input, key: 'k', value: 'r1', partition: 0 },
      ])
      const [r0, r1] = await waitFor(() => a.handled.length >= 2 && a.handled, 'both records handled')
      const writer = writerOf(a)
      await writer.commit([{ topic: f.output, key: 'k', value: 'out:r0' }], r0!.offset + 1n)
      await waitFor(async () => (await visible(f.bus, f.output)).length === 1, 'the first output')
      const writtenBefore = await written(f.output)

      const failure = await writer.commit([{ topic: f.output, key: 'k', value: 'out:r1' }, { topic: tooSmall, key: 'k', value: 'x'.repeat(4096) }], r1!.offset + 1n).then(
        () => undefined,
        (error: Error) => error,
      )
      expect(failure).toBeInstanceOf(Error)
      expect(failure).not.toBeInstanceOf(FencedError)
      // out:r1 reached the log inside the transaction, yet neither it nor the offset is visible.
      expect(await written(f.output)).toBeGreaterThan(writtenBefore)
      expect(await committed(f)).toBe(r0!.offset + 1n)
      expect(await visible(f.bus, f.output)).toEqual(['out:r0'])

      await writer.commit([{ topic: f.output, key: 'k', value: 'out:r1-again' }], r1!.offset + 1n)
      await waitFor(async () => (await committed(f)) === r1!.offset + 1n && (await visible(f.bus, f.output)).length === 2, 'the retried transaction to become visible')
      expect(await visible(f.bus, f.output)).toEqual(['out:r0', 'out:r1-again'])
      expect(a.errors).toEqual([])
    })

    it('refuses, with FencedError, a commit after a newer producer took the partition’s transactional id, moving neither; the member reports the fence', async () => {
      const f = await fresh()
      const a = await join(f, 'a')
      await f.bus.publish([{ topic: f.input, key: 'k', value: 'r0', partition: 0 }])
      const [r0] = await waitFor(() => a.handled.length >= 1 && a.handled, 'the record handled')

      // Another process initialises the partition's transactional id (<group>.<topic>.<p>).
      const usurper = new Producer({ clientId: 'sagactl-test-adapter-usurper', bootstrapBrokers: brokers, idempotent: true, acks: ProduceAcks.ALL, transactionalId: `${f.group}.${f.input}.0` })
      cleanups.push(() => usurper.close())
      await (await usurper.beginTransaction({ producerId: -1n, producerEpoch: -1 })).cancel()

      await expect(writerOf(a).commit([{ topic: f.output, key: 'k', value: 'out:r0' }], r0!.offset + 1n)).rejects.toBeInstanceOf(FencedError)
      expect(await committed(f)).toBe(-1n)
      expect(await written(f.output)).toBe(0n)
      // The group still gives the partition to this member: it fails, to rejoin as a fresh one.
      await waitFor(() => a.errors.some((e) => e instanceof FencedError), 'the member to report the fence')
      await expect(writerOf(a).commit([], r0!.offset + 1n)).rejects.toBeInstanceOf(FencedError)
    })
  })

  describe('a crash before the commit redelivers the record', () => {
    it('hands a record handled but not committed by a SIGKILLed member to the next member, at the same offset', async () => {
      const f = await fresh()
      const crashed = spawnMember(f)
      await waitFor(() => crashed.lines.some((l) => l.event === 'assigned'), 'the child member to be assigned the partition')
      await f.bus.publish([
        { topic: f.input, key: 'k', value: 'commit:a', partition: 0 },
        { topic: f.input, key: 'k', value: 'hold:b', partition: 0 },
      ])
      const held = await waitFor(() => crashed.lines.find((l) => l.event === 'handled' && l.value === 'hold:b'), 'the child to handle hold:b')
      await waitFor(() => crashed.lines.some((l) => l.event === 'committed'), 'the child to commit commit:a')
      expect(await crashed.kill()).toBe('SIGKILL')
      const afterA = BigInt(held.offset!)
      await waitFor(async () => (await committed(f)) === afterA, 'commit:a’s offset to be committed')

      const next = await join(f, 'next')
      await waitFor(() => next.handled.length >= 1, 'the next member to receive a record', TAKEOVER_MS)
      expect(next.handled.map((r) => [r.value!.toString(), r.offset])).toEqual([['hold:b', afterA]])
      expect(await visible(f.bus, f.output)).toEqual(['out:a'])
    })

    it('aborts the transaction a member was SIGKILLed in just before EndTxn, and hands its record to the next member, whose output alone is seen', async () => {
      const f = await fresh()
      // Static membership: the restarted member takes the partition back without a session timeout.
      const instanceId = `m-${randomUUID().slice(0, 8)}`
      const crashed = spawnMember(f, instanceId)
      await waitFor(() => crashed.lines.some((l) => l.event === 'assigned'), 'the child member to be assigned the partition')
      await f.bus.publish([
        { topic: f.input, key: 'k', value: 'commit:a', partition: 0 },
        { topic: f.input, key: 'k', value: 'die:b', partition: 0 },
      ])
      expect(await crashed.exited).toBe('SIGKILL')
      const died = crashed.lines.find((l) => l.event === 'handled' && l.value === 'die:b')
      expect(died).toBeDefined()
      expect(crashed.lines.at(-1)?.event).toBe('dying')
      // out:a, its commit marker, then out:b: in the log, in a transaction nobody will commit,
      // with its offset pending in it.
      await waitFor(async () => (await written(f.output)) === 3n, 'out:a and out:b to be in the log')
      expect(await visible(f.bus, f.output)).toEqual(['out:a'])
      expect(await committed(f)).toBe(BigInt(died!.offset!))

      const next = await join(f, 'next', { instanceId })
      const [again] = await waitFor(() => next.handled.length >= 1 && next.handled, 'the next member to receive die:b again', TAKEOVER_MS)
      expect([again!.value!.toString(), again!.offset]).toEqual(['die:b', BigInt(died!.offset!)])
      await writerOf(next).commit([{ topic: f.output, key: 'k', value: 'out:b-again' }], again!.offset + 1n)
      await waitFor(async () => (await committed(f)) === again!.offset + 1n && (await visible(f.bus, f.output)).length === 2, 'the next member’s transaction to become visible')
      expect(await visible(f.bus, f.output)).toEqual(['out:a', 'out:b-again'])
      expect(next.handled).toHaveLength(1)
    })
  })

  describe('a revoked partition stops delivering', () => {
    it('revokes what moves to a second member, delivers those partitions’ records only to it, and voids the first member’s writers for them', async () => {
      const partitions = [0, 1, 2, 3]
      const f = await fresh(partitions.length)
      const a = await join(f, 'a')
      await waitFor(() => a.owned.size === partitions.length, 'the first member to own every partition')
      await f.bus.publish(partitions.map((p) => ({ topic: f.input, key: `k${p}`, value: `before:${p}`, partition: p })))
      await waitFor(() => a.handled.length >= partitions.length, 'the first member to handle a record of each partition')
      for (const r of a.handled) await writerOf(a, r.partition).commit([{ topic: f.output, key: r.value!.toString(), value: `out:${r.value!.toString()}` }], r.offset + 1n)
      await waitFor(async () => (await visible(f.bus, f.output)).length === partitions.length, 'the first member’s outputs')

      const b = await join(f, 'b')
      await waitFor(() => a.revocations.length > 0 && b.owned.size > 0 && a.owned.size + b.owned.size === partitions.length, 'the partitions to be shared', TAKEOVER_MS)
      const moved = a.revocations.flatMap((r) => r.partitions).sort((x, y) => x - y)
      expect(moved).toEqual([...b.owned].sort((x, y) => x - y))
      expect([...a.owned, ...b.owned].sort((x, y) => x - y)).toEqual(partitions)
      expect(a.owned.size).toBeGreaterThan(0)
      const handledBeforeByA = a.handled.length

      await f.bus.publish(partitions.map((p) => ({ topic: f.input, key: `k${p}`, value: `after:${p}`, partition: p })))
      await waitFor(() => a.handled.length + b.handled.length >= handledBeforeByA + partitions.length, 'every partition’s new record to be handled')
      const byA = a.handled.slice(handledBeforeByA)
      expect(byA.map((r) => r.partition).sort((x, y) => x - y)).toEqual([...a.owned].sort((x, y) => x - y))
      // The new owner starts at the committed offsets: it never sees the records committed before.
      expect(b.handled.map((r) => r.partition).sort((x, y) => x - y)).toEqual(moved)
      expect(values(b.handled).sort()).toEqual(moved.map((p) => `after:${p}`))

      // The first member's writer of a moved partition: refused, and nothing moves.
      const p = moved[0]!
      const offsetBefore = await committed(f, p)
      await expect(writerOf(a, p).commit([{ topic: f.output, key: 'zombie', value: 'zombie' }], offsetBefore + 1n)).rejects.toBeInstanceOf(FencedError)
      expect(await committed(f, p)).toBe(offsetBefore)
      expect(await visible(f.bus, f.output)).not.toContain('zombie')
      expect([...a.errors, ...b.errors]).toEqual([])
    })

    it('drops the records of a revoked partition that were fetched before the revocation but not yet handed over', async () => {
      const partitions = [0, 1, 2, 3]
      const f = await fresh(partitions.length)
      // The first member's handler holds its first record until the test lets go: the rest of the
      // fetch waits in the adapter's stream while the group moves partitions away.
      let release!: () => void
      const held = new Promise<void>((resolve) => (release = resolve))
      const a = await join(f, 'a', { then: () => held })
      cleanups.push(async () => release())
      await waitFor(() => a.owned.size === partitions.length, 'the first member to own every partition')
      await f.bus.publish(partitions.flatMap((p) => [1, 2, 3].map((i) => ({ topic: f.input, key: `k${p}`, value: `${p}:${i}`, partition: p }))))
      await waitFor(() => a.handled.length === 1, 'the first member to be holding a record')

      const b = await join(f, 'b')
      await waitFor(() => a.revocations.length > 0 && b.owned.size > 0 && a.owned.size + b.owned.size === partitions.length, 'the partitions to be shared', TAKEOVER_MS)
      const moved = a.revocations.flatMap((r) => r.partitions)
      const revokedAt = a.revocations[0]!.handledBefore
      release()

      // Nothing was committed: the new owner gets every record of what moved, from the start.
      const expected = moved.flatMap((p) => [1, 2, 3].map((i) => `${p}:${i}`)).sort()
      await waitFor(() => b.handled.length >= expected.length, 'the second member to receive the moved partitions’ records', TAKEOVER_MS)
      expect(values(b.handled).sort()).toEqual(expected)
      // The first member kept handling what it still owns, and nothing of what moved.
      await waitFor(() => a.handled.slice(revokedAt).some((r) => a.owned.has(r.partition)), 'the first member to go on with its own partitions')
      expect(a.handled.slice(revokedAt).filter((r) => moved.includes(r.partition))).toEqual([])
      expect([...a.errors, ...b.errors]).toEqual([])
    })

    it('reads a partition that comes back without a committed offset from the start again, not from where the member had fetched it before it moved', async () => {
      const partitions = [0, 1]
      const f = await fresh(partitions.length)
      const a = await join(f, 'a')
      await waitFor(() => a.owned.size === partitions.length, 'the first member to own every partition')
      await f.bus.publish(partitions.map((p) => ({ topic: f.input, key: `k${p}`, value: `${p}:1`, partition: p })))
      await waitFor(() => a.handled.length === partitions.length, 'the first member to handle both records')

      // Nobody commits: what the first member handled is not done, for whoever owns it next.
      const b = await join(f, 'b')
      await waitFor(() => a.revocations.length > 0 && b.owned.size > 0, 'a partition to move to the second member', TAKEOVER_MS)
      const moved = a.revocations.flatMap((r) => r.partitions)
      await waitFor(() => b.handled.length === moved.length, 'the second member to receive the moved partition’s record')
      await b.leave()

      await waitFor(() => a.owned.size === partitions.length, 'the partition to come back to the first member', TAKEOVER_MS)
      const since = a.revocations.at(-1)!.handledBefore
      // Its record was committed by nobody: a new owner starts at the committed offset, or at
      // `start` without one, never at a position this member reached before the partition moved.
      await waitFor(() => moved.every((p) => a.handled.slice(since).some((r) => r.partition === p && r.offset === 0n)), `the first member to receive partition ${moved.join(', ')} again from offset 0`, 20_000)
      expect([...a.errors, ...b.errors]).toEqual([])
    })
  })

  describe('reading and topics', () => {
    it('read() stops at the last stable offset: an open transaction’s records, and all after them, wait for its commit', async () => {
      const f = await fresh()
      const producer = new Producer({ clientId: 'sagactl-test-adapter-open', bootstrapBrokers: brokers, idempotent: true, acks: ProduceAcks.ALL, transactionalId: `${f.output}.open` })
      cleanups.push(() => producer.close())
      await f.bus.publish([{ topic: f.output, key: 'k', value: 'c1', partition: 0 }])
      const open = await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })
      await open.send({ messages: [{ topic: f.output, key: Buffer.from('k'), value: Buffer.from('open'), partition: 0 }] })
      await f.bus.publish([{ topic: f.output, key: 'k', value: 'c2', partition: 0 }])
      await waitFor(async () => (await written(f.output)) === 3n, 'three records in the log')

      expect(await visible(f.bus, f.output)).toEqual(['c1'])
      await open.commit()
      await waitFor(async () => (await visible(f.bus, f.output)).length === 3, 'the committed transaction to become visible')
      expect(await visible(f.bus, f.output)).toEqual(['c1', 'open', 'c2'])
    })

    it('committedOffsets gives the group’s offset per partition (-1 where none), and a group is caught up only once it committed up to the end', async () => {
      const f = await fresh(2)
      const a = await join(f, 'a')
      await waitFor(async () => a.owned.size === 2, 'both partitions assigned')
      const groups = [{ groupId: f.group, topic: f.input }]
      expect(await f.bus.committedOffsets(f.group, f.input)).toEqual([-1n, -1n])
      // A group that never committed is left out (its role is not deployed): nothing to wait for.
      await f.bus.publish([{ topic: f.input, key: 'k', value: 'r0', partition: 1 }])
      expect(await caughtUp(f.bus, groups)).toBe(true)

      await waitFor(() => a.handled.length === 1, 'the record to be handled')
      await writerOf(a, 1).commit([], a.handled[0]!.offset + 1n)
      await waitFor(async () => (await f.bus.committedOffsets(f.group, f.input))[1] === 1n, 'the offset to be committed')
      expect(await f.bus.committedOffsets(f.group, f.input)).toEqual([-1n, 1n])
      expect(await caughtUp(f.bus, groups)).toBe(true)
      await f.bus.publish([{ topic: f.input, key: 'k', value: 'r1', partition: 1 }])
      await waitFor(() => a.handled.length === 2, 'the second record to be handled')
      expect(await caughtUp(f.bus, groups)).toBe(false)
      await writerOf(a, 1).commit([], a.handled[1]!.offset + 1n)
      await waitFor(async () => caughtUp(f.bus, groups), 'the group to catch up')
    })

    it('ensureTopics refuses an existing changelog that is not compacted, or has another partition count (TopicMismatchError)', async () => {
      const f = await fresh()
      const changelog = `${f.input}.changelog`
      await f.bus.ensureTopics([{ name: changelog, partitions: 2 }])
      await expect(f.bus.ensureTopics([{ name: changelog, partitions: 2, compacted: true }])).rejects.toBeInstanceOf(TopicMismatchError)
      await expect(f.bus.ensureTopics([{ name: f.input, partitions: 3 }])).rejects.toBeInstanceOf(TopicMismatchError)
      // A compacted one with the right count passes, again and again.
      const good = `${f.input}.changelog-ok`
      await f.bus.ensureTopics([{ name: good, partitions: 2, compacted: true }])
      await expect(f.bus.ensureTopics([{ name: good, partitions: 2, compacted: true }])).resolves.toBeUndefined()
    })
  })
})
