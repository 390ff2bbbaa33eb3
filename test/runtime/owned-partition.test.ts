import { afterEach, describe, expect, it, vi } from 'vitest'

import type { QueuedRow } from '../../src/runtime/local-store.js'
import { COMMIT_BATCH, OwnedPartition } from '../../src/runtime/owned-partition.js'
import { MemoryWriter } from './memory-bus.js'

const PART = 2
const CHANGELOG = 'orchestrator-changelog'

function row(seq: number, unit: number, key: string, at = 1_000): QueuedRow {
  return { seq, unit, topic: key.startsWith('s|') ? CHANGELOG : 'inventory.commands', key, value: 'v', headers: null, part: PART, destPartition: key.startsWith('s|') ? PART : null, at }
}

/** A restored partition that handled `units`, each one output then one changelog record, the n-th record at offset n. */
function partitionWith(units: number): OwnedPartition {
  const owned = new OwnedPartition(new MemoryWriter(PART, []))
  owned.restored()
  for (let u = 1; u <= units; u++) {
    owned.queue(row(2 * u - 1, u, `order-${u}`), false)
    owned.queue(row(2 * u, u, `s|order|${u}`), true)
    owned.handled(2 * u, BigInt(u))
  }
  return owned
}

describe('an owned partition: what it handled, and how much of it may be committed', () => {
  afterEach(() => vi.useRealTimers())

  it('given outputs not yet acknowledged, when a commit is planned, then it covers nothing: no changelog record and no offset past an output that did not go out', () => {
    const owned = partitionWith(2)
    const plan = owned.nextCommit()
    expect(plan.rows).toEqual([])
    expect(plan.offset).toBeUndefined()
    expect(owned.behind).toBe(true)
  })

  it('given the first unit acknowledged, when a commit is planned, then it covers that unit alone, up to its offset', () => {
    const owned = partitionWith(2)
    expect(owned.takeUnsent().map((r) => r.seq)).toEqual([1, 3])
    owned.acknowledged(1)
    const plan = owned.nextCommit()
    expect(plan.rows.map((r) => r.seq)).toEqual([2])
    expect(plan.offset).toBe(1n)
    expect(plan.through).toBe(2)
    expect(plan.complete).toBe(true)
  })

  it('given outputs that failed to go, then they are taken again for the next send', () => {
    const owned = partitionWith(2)
    owned.takeUnsent()
    expect(owned.takeUnsent()).toEqual([])
    owned.unsent(2)
    expect(owned.takeUnsent().map((r) => r.seq)).toEqual([1, 3])
  })

  it('given a unit that wrote one key twice, when it is committed, then only the last record of the key is sent', () => {
    const owned = new OwnedPartition(new MemoryWriter(PART, []))
    owned.restored()
    const [first, second] = [row(1, 1, 's|order|a'), { ...row(2, 1, 's|order|a'), value: 'newer' }]
    owned.queue(first, true)
    owned.queue(second, true)
    owned.handled(2, 7n)
    const plan = owned.nextCommit()
    expect(plan.rows).toHaveLength(2)
    expect(plan.records).toEqual([second])
  })

  it('given a commit that went out, when the next is planned, then it starts after it and commits the same offset no more', () => {
    const owned = partitionWith(1)
    owned.acknowledged(owned.takeUnsent().length)
    owned.committed(owned.nextCommit())
    expect(owned.behind).toBe(false)
    owned.handled(2, 1n)
    const plan = owned.nextCommit()
    expect(plan.rows).toEqual([])
    expect(plan.offset).toBeUndefined()
    owned.skipped(plan)
    expect(owned.behind).toBe(false)
  })

  it('given a record handed over again from an earlier offset, then the offset to commit never moves back', () => {
    const owned = new OwnedPartition(new MemoryWriter(PART, []))
    owned.restored()
    owned.handled(0, 5n)
    owned.handled(0, 3n)
    const plan = owned.nextCommit()
    expect(plan.offset).toBe(5n)
    expect(plan.marks).toBe(2)
  })

  it('given more changelog records than one commit takes, then the plan stops at a unit boundary and says more follows', () => {
    const owned = new OwnedPartition(new MemoryWriter(PART, []))
    owned.restored()
    // Units of three records each: the batch's limit falls inside a unit, which is taken whole.
    for (let seq = 1; seq <= COMMIT_BATCH + 10; seq++) owned.queue(row(seq, Math.ceil(seq / 3), `s|order|${seq}`), true)
    const plan = owned.nextCommit()
    expect(plan.complete).toBe(false)
    expect(plan.rows.length).toBe(Math.ceil(COMMIT_BATCH / 3) * 3)
  })

  it('given rows waiting, then the partition says how many and when the oldest was written', () => {
    const owned = new OwnedPartition(new MemoryWriter(PART, []))
    expect(owned.oldestAt).toBeNull()
    owned.queue(row(1, 1, 'order-1', 500), false)
    owned.queue(row(2, 1, 's|order|1', 300), true)
    expect(owned.queued).toBe(2)
    expect(owned.oldestAt).toBe(300)
  })

  it('given a commit in flight, when another is asked, then it shares that one, and one more runs after it went well', async () => {
    const owned = partitionWith(1)
    let release!: () => void
    const again = vi.fn()
    const first = owned.commitOnce(() => new Promise<void>((resolve) => (release = resolve)), () => undefined, again)
    const second = owned.commitOnce(() => Promise.reject(new Error('not run')), () => undefined, again)
    expect(second).toBe(first)
    release()
    await first
    expect(again).toHaveBeenCalledTimes(1)
    await owned.settled()
  })

  it('given a commit that fails, then the failure is told, nothing runs again at once, and the failing time counts from the first failure', async () => {
    vi.useFakeTimers({ now: 10_000 })
    const owned = partitionWith(1)
    const failed = vi.fn()
    const again = vi.fn()
    const flight = owned.commitOnce(() => Promise.reject(new Error('broker away')), failed, again)
    void owned.commitOnce(() => Promise.resolve(), failed, again)
    await flight
    expect(failed).toHaveBeenCalledWith(new Error('broker away'))
    expect(again).not.toHaveBeenCalled()
    expect(owned.failingFor()).toBe(0)
    vi.setSystemTime(15_000)
    expect(owned.failingFor()).toBe(5_000)
    owned.sent()
    expect(owned.failingFor()).toBe(0)
  })

  it('given a partition not yet restored, then no commit is scheduled; once restored, one at a time until it runs', async () => {
    vi.useFakeTimers({ now: 10_000 })
    const owned = new OwnedPartition(new MemoryWriter(PART, []))
    const commit = vi.fn()
    owned.schedule(1_000, commit)
    await vi.runAllTimersAsync()
    expect(commit).not.toHaveBeenCalled()
    owned.restored()
    owned.schedule(1_000, commit)
    owned.schedule(1_000, commit)
    await vi.runAllTimersAsync()
    expect(commit).toHaveBeenCalledTimes(1)
  })

  it('given a scheduled commit, when the partition is released, then it does not run', async () => {
    vi.useFakeTimers({ now: 10_000 })
    const owned = partitionWith(1)
    const commit = vi.fn()
    owned.schedule(1_000, commit)
    owned.release()
    await vi.runAllTimersAsync()
    expect(commit).not.toHaveBeenCalled()
  })
})
