import { EventEmitter } from 'node:events'

import type { Consumer, Message, MessagesStream } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'

import { Flow } from '../../src/kafka/flow.js'

type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>

/** What Flow uses of the client's stream: its events, its positions, pause and close. */
class FakeStream extends EventEmitter {
  readonly offsetsToFetch = new Map<string, bigint>()
  pause(): void {}
  resume(): void {}
  async close(): Promise<void> {}
  /** The client lists the group's committed offsets and says so before its first fetch. */
  listed(committed: Record<number, bigint>): void {
    for (const [p, offset] of Object.entries(committed)) this.offsetsToFetch.set(`orders:${p}`, offset)
    this.emit('offsets')
  }
}

const consumer = { memberId: 'member-1', topics: { track: () => undefined } } as unknown as Consumer<Buffer, Buffer, Buffer, Buffer>
const record = (partition: number, offset: bigint): Message<Buffer, Buffer, Buffer, Buffer> => ({ partition, offset }) as Message<Buffer, Buffer, Buffer, Buffer>

/** A flow whose handler hands every record over, and whose failed stream is replaced by `next`. */
function flowOver(first: FakeStream, next: FakeStream): { flow: Flow; reopened: Promise<void> } {
  let reopenedNow!: () => void
  const reopened = new Promise<void>((resolve) => (reopenedNow = resolve))
  const flow: Flow = new Flow({
    topic: 'orders',
    consumer,
    stream: first as unknown as Stream,
    reopen: async () => {
      reopenedNow()
      return next as unknown as Stream
    },
    onMessage: (message) => flow.handed(message.partition, message.offset),
    fail: (error) => {
      throw error
    },
    options: { retryWithinMs: 30_000 },
  })
  return { flow, reopened }
}

/** The stream fails; resolves once Flow has attached its replacement. */
async function failOver(first: FakeStream, reopened: Promise<void>): Promise<void> {
  first.emit('error', new Error('request timed out'))
  await reopened
  await new Promise((resolve) => setImmediate(resolve))
}

describe('a stream replaced while its partitions stay', () => {
  it('given records handed over up to offset 4 of partition 0 and the group committed 10 by another member, when the stream fails and a new one lists the committed offsets, then partition 0 goes on from 5', async () => {
    const first = new FakeStream()
    const next = new FakeStream()
    const { flow, reopened } = flowOver(first, next)
    first.listed({ 0: 0n, 1: 0n })
    for (let offset = 0n; offset <= 4n; offset++) first.emit('data', record(0, offset))

    await failOver(first, reopened)
    next.listed({ 0: 10n, 1: 7n })

    expect(next.offsetsToFetch.get('orders:0')).toBe(5n)
    // Nothing was handed over of partition 1: it starts where the group says.
    expect(next.offsetsToFetch.get('orders:1')).toBe(7n)
    await flow.close()
  })

  it('given a partition forgotten (it left, or came back restored), when the stream is replaced, then it starts at the committed offset', async () => {
    const first = new FakeStream()
    const next = new FakeStream()
    const { flow, reopened } = flowOver(first, next)
    first.listed({ 0: 0n })
    first.emit('data', record(0, 3n))
    flow.forget(0)

    await failOver(first, reopened)
    next.listed({ 0: 12n })

    expect(next.offsetsToFetch.get('orders:0')).toBe(12n)
    await flow.close()
  })

  it('given a replaced stream put back where it was, when the client lists offsets again (a join, an offset out of range), then it keeps what the client says', async () => {
    const first = new FakeStream()
    const next = new FakeStream()
    const { flow, reopened } = flowOver(first, next)
    first.listed({ 0: 0n })
    first.emit('data', record(0, 8n))
    await failOver(first, reopened)
    next.listed({ 0: 2n })
    expect(next.offsetsToFetch.get('orders:0')).toBe(9n)

    next.listed({ 0: 20n })

    expect(next.offsetsToFetch.get('orders:0')).toBe(20n)
    await flow.close()
  })
})
