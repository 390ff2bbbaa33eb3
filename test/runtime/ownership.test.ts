import { describe, expect, it } from 'vitest'

import type { QueuedRow } from '../../src/runtime/local-store.js'
import { Ownership } from '../../src/runtime/ownership.js'
import { MemoryWriter } from './memory-bus.js'

const CHANGELOG = 'orchestrator-changelog'

function row(seq: number, part: number, topic: string, at = 1_000): QueuedRow {
  return { seq, unit: seq, topic, key: `k${seq}`, value: 'v', headers: null, part, destPartition: topic === CHANGELOG ? part : null, at }
}

describe('ownership: the partitions this instance owns now', () => {
  it('given partitions taken, then each is owned at once but handled only once restored, listed in order', () => {
    const ownership = new Ownership()
    const five = ownership.take(new MemoryWriter(5, []))
    ownership.take(new MemoryWriter(1, []))
    expect(ownership.owns(5)).toBe(true)
    expect(ownership.isReady(5)).toBe(false)
    expect(ownership.readyPartitions()).toEqual([])
    five.restored()
    ownership.get(1)!.restored()
    expect(ownership.readyPartitions()).toEqual([1, 5])
    expect(ownership.partitions().sort()).toEqual([1, 5])
  })

  it('given a partition taken again, then the earlier take no longer holds it', () => {
    const ownership = new Ownership()
    const earlier = ownership.take(new MemoryWriter(3, []))
    const later = ownership.take(new MemoryWriter(3, []))
    expect(ownership.holds(3, earlier)).toBe(false)
    expect(ownership.holds(3, later)).toBe(true)
  })

  it('given a partition given up, then it is owned no more and what was held of it is returned', () => {
    const ownership = new Ownership()
    const owned = ownership.take(new MemoryWriter(3, []))
    expect(ownership.giveUp(3)).toBe(owned)
    expect(ownership.owns(3)).toBe(false)
    expect(ownership.giveUp(3)).toBeUndefined()
  })

  it('given committed rows, then each goes to its own partition as an output or a changelog record, and rows of a partition not owned are dropped', () => {
    const ownership = new Ownership()
    const zero = ownership.take(new MemoryWriter(0, []))
    const one = ownership.take(new MemoryWriter(1, []))
    ownership.queue([row(1, 0, 'inventory.commands', 700), row(2, 0, CHANGELOG, 600), row(3, 1, 'payment.commands', 900), row(4, 9, 'inventory.commands', 100)], CHANGELOG)
    expect(zero.takeUnsent().map((r) => r.seq)).toEqual([1])
    expect(one.takeUnsent().map((r) => r.seq)).toEqual([3])
    expect(ownership.queued()).toEqual({ depth: 3, oldestAt: 600 })
    expect(ownership.behind()).toBe(true)
  })

  it('given nothing handled, then nothing is behind or waiting', () => {
    const ownership = new Ownership()
    ownership.take(new MemoryWriter(0, []))
    expect(ownership.behind()).toBe(false)
    expect(ownership.queued()).toEqual({ depth: 0, oldestAt: null })
  })
})
