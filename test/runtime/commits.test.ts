import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { Commits } from '../../src/runtime/commits.js'
import { Crasher } from '../../src/runtime/crash.js'
import type { QueuedRow } from '../../src/runtime/local-store.js'
import { Ownership } from '../../src/runtime/ownership.js'
import { MemoryWriter } from './memory-bus.js'

const PART = 1
const CHANGELOG = 'orchestrator-changelog'
const log = pino({ level: 'silent' })

function changelogRow(seq: number, key: string): QueuedRow {
  return { seq, unit: seq, topic: CHANGELOG, key, value: `v${seq}`, headers: null, part: PART, destPartition: PART, at: 0 }
}

/** A restored partition with `n` units handled, each one changelog record, the n-th record at offset n. */
function system(n: number, intervalMs = 1_000) {
  const ownership = new Ownership()
  const writer = new MemoryWriter(PART, [])
  const owned = ownership.take(writer)
  owned.restored()
  for (let seq = 1; seq <= n; seq++) {
    owned.queue(changelogRow(seq, `s|order|${seq}`), true)
    owned.handled(seq, BigInt(seq))
  }
  const fenced: number[] = []
  const stuck: Error[] = []
  const commits = new Commits({ ownership, crash: new Crasher(undefined, log), log, onStuck: (e) => void stuck.push(e), onFenced: (p) => void fenced.push(p), commitIntervalMs: intervalMs })
  return { ownership, writer, owned, commits, fenced, stuck }
}

describe('the commit path: a partition changelog records and offset, through its own writer', () => {
  afterEach(() => vi.useRealTimers())

  it('given records handled, when the partition commits, then its changelog records and its next offset go in one transaction, and nothing is left behind', async () => {
    const { writer, owned, commits } = system(2)
    await commits.commit(PART)
    expect(writer.commits).toEqual([{ records: [{ topic: CHANGELOG, key: 's|order|1', value: 'v1', partition: PART }, { topic: CHANGELOG, key: 's|order|2', value: 'v2', partition: PART }], nextOffset: 2n }])
    expect(owned.behind).toBe(false)
  })

  it('given nothing new since the last commit, then no transaction is sent', async () => {
    const { writer, commits } = system(1)
    await commits.commit(PART)
    await commits.commit(PART)
    expect(writer.commits).toHaveLength(1)
  })

  it('given a partition not owned here, then committing it does nothing', async () => {
    const { writer, ownership, commits } = system(1)
    ownership.giveUp(PART)
    await commits.commit(PART)
    expect(writer.commits).toEqual([])
  })

  it('given another instance owns the partition now, when it commits, then the partition is reported fenced, its rows are kept, and nothing is retried', async () => {
    const { writer, owned, commits, fenced } = system(1)
    writer.fenced = true
    await commits.commit(PART)
    expect(fenced).toEqual([PART])
    expect(owned.behind).toBe(true)
  })

  it('given commits failing for longer than a minute, then the member is told it is stuck', async () => {
    vi.useFakeTimers({ now: 100_000 })
    const { writer, commits, stuck } = system(1)
    writer.commit = () => Promise.reject(new Error('coordinator moved'))
    await commits.commit(PART)
    vi.setSystemTime(160_000)
    await commits.commit(PART)
    expect(stuck).toEqual([])
    vi.setSystemTime(160_001)
    await commits.commit(PART)
    expect(stuck.map((e) => e.message)).toEqual([`partition ${PART} could not commit for 60 s: coordinator moved`])
  })

  it('given a commit asked for while one is in flight, then a second commit follows it, at the interval', async () => {
    vi.useFakeTimers({ now: 100_000 })
    const { writer, owned, commits } = system(1)
    let release!: () => void
    const send = writer.commit.bind(writer)
    writer.commit = (records, offset) => new Promise<void>((resolve) => (release = resolve)).then(() => send(records, offset))
    const first = commits.commit(PART)
    owned.queue(changelogRow(2, 's|order|2'), true)
    owned.handled(2, 2n)
    void commits.commit(PART)
    writer.commit = send
    release()
    await first
    expect(writer.commits.map((c) => c.nextOffset)).toEqual([1n])
    await vi.advanceTimersByTimeAsync(1_000)
    expect(writer.commits.map((c) => c.nextOffset)).toEqual([1n, 2n])
  })

  it('given the role draining, then a scheduled commit goes at once, whatever the interval', async () => {
    vi.useFakeTimers({ now: 100_000 })
    const { writer, owned, commits } = system(1, 60_000)
    await commits.commit(PART)
    owned.queue(changelogRow(2, 's|order|2'), true)
    owned.handled(2, 2n)
    commits.schedule(PART)
    await vi.advanceTimersByTimeAsync(0)
    expect(writer.commits).toHaveLength(1)
    owned.release()
    commits.draining = true
    commits.schedule(PART)
    await vi.advanceTimersByTimeAsync(0)
    expect(writer.commits.map((c) => c.nextOffset)).toEqual([1n, 2n])
  })
})
