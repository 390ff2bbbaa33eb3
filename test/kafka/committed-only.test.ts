import { Consumer } from '@platformatic/kafka'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { CommittedConsumer, committedOnly, type AbortedTransaction, type BatchHead, type FetchAnswer } from '../../src/kafka/committed-only.js'

interface Batch extends BatchHead {
  name: string
}

const data = (name: string, producer: number, offset: number, count = 1): Batch => ({ name, producerId: BigInt(producer), firstOffset: BigInt(offset), lastOffsetDelta: count - 1, attributes: 0 })
const marker = (name: string, producer: number, offset: number): Batch => ({ name, producerId: BigInt(producer), firstOffset: BigInt(offset), lastOffsetDelta: 0, attributes: 0x20 })
const aborted = (producer: number, firstOffset: number): AbortedTransaction => ({ producerId: BigInt(producer), firstOffset: BigInt(firstOffset) })
const answer = (records: Batch[], abortedTransactions: AbortedTransaction[] | null): FetchAnswer<{ records: Batch[]; abortedTransactions: AbortedTransaction[] | null }> => ({
  responses: [{ partitions: [{ records, abortedTransactions }] }],
})
const kept = (response: FetchAnswer<{ records: Batch[]; abortedTransactions: AbortedTransaction[] | null }>): string[] => response.responses[0]!.partitions[0]!.records.map((b) => b.name)

describe('committedOnly, the read_committed filter of our consumer', () => {
  it('given one producer that aborted several transactions in one response, when filtered, then none of their data batches is left', () => {
    const response = answer(
      [data('c1', 1, 0), marker('commit', 1, 1), data('a0', 1, 2, 2), marker('abort0', 1, 4), data('a1', 1, 5), marker('abort1', 1, 6), data('a2', 1, 7), marker('abort2', 1, 8), data('c2', 1, 9), marker('commit', 1, 10)],
      [aborted(1, 2), aborted(1, 5), aborted(1, 7)],
    )
    expect(kept(committedOnly(response))).toEqual(['c1', 'commit', 'abort0', 'abort1', 'abort2', 'c2', 'commit'])
  })

  it('given aborted transactions listed out of offset order, when filtered, then each is still dropped', () => {
    const response = answer([data('a0', 1, 0), marker('abort0', 1, 1), data('a1', 1, 2), marker('abort1', 1, 3), data('c', 1, 4)], [aborted(1, 2), aborted(1, 0)])
    expect(kept(committedOnly(response))).toEqual(['abort0', 'abort1', 'c'])
  })

  it('given an aborted transaction whose abort marker is past the end of the response, when filtered, then its data batches are dropped', () => {
    const response = answer([data('c1', 1, 0), marker('commit', 1, 1), data('a1', 1, 2), data('a2', 1, 3)], [aborted(1, 2)])
    expect(kept(committedOnly(response))).toEqual(['c1', 'commit'])
  })

  it('given a response that starts inside an aborted transaction, when filtered, then its remaining data batches are dropped and the next transaction is kept', () => {
    const response = answer([data('a2', 1, 5), marker('abort', 1, 6), data('c', 1, 7), marker('commit', 1, 8)], [aborted(1, 3)])
    expect(kept(committedOnly(response))).toEqual(['abort', 'c', 'commit'])
  })

  it('given an aborted transaction whose data batches were already taken out, when a committed batch of the same producer follows its marker, then that batch is kept', () => {
    const response = answer([data('c1', 1, 0), marker('abort', 1, 3), data('c2', 1, 4), marker('commit', 1, 5)], [aborted(1, 1)])
    expect(kept(committedOnly(response))).toEqual(['c1', 'abort', 'c2', 'commit'])
  })

  it('given a response that begins at the abort marker of a transaction whose data came before, when a committed batch of the same producer follows, then that batch is kept', () => {
    const response = answer([marker('abort', 1, 2), data('c', 1, 3), marker('commit', 1, 4)], [aborted(1, 0)])
    expect(kept(committedOnly(response))).toEqual(['abort', 'c', 'commit'])
  })

  it('given control batches of aborted and committed transactions, when filtered, then every control batch stays', () => {
    const response = answer([data('a', 1, 0), marker('abort', 1, 1), data('c', 2, 2), marker('commit', 2, 3), marker('abort-empty', 3, 4)], [aborted(1, 0), aborted(3, 4)])
    expect(kept(committedOnly(response))).toEqual(['abort', 'c', 'commit', 'abort-empty'])
  })

  it('given two producers interleaved, one aborting, when filtered, then only the aborting producer loses batches', () => {
    const response = answer([data('p1-a', 1, 0), data('p2-c', 2, 1), data('p1-a', 1, 2), marker('p2-commit', 2, 3), data('p3', 3, 4), marker('p1-abort', 1, 5)], [aborted(1, 0)])
    expect(kept(committedOnly(response))).toEqual(['p2-c', 'p2-commit', 'p3', 'p1-abort'])
  })

  it('given a response that lists no aborted transaction, when filtered, then it is that response itself', () => {
    const response = { responses: [{ partitions: [{ records: [data('x', 1, 0)], abortedTransactions: null }, { records: [data('y', 2, 0)], abortedTransactions: [] }] }] }
    expect(committedOnly(response)).toBe(response)
  })

  it('given a partition without aborted transactions or records, when filtered, then it is returned as it was and the input is never changed', () => {
    const records = [data('a', 1, 0), marker('abort', 1, 1)]
    const response = { responses: [{ partitions: [{ records: [data('x', 1, 0)], abortedTransactions: null }, { records: null, abortedTransactions: [aborted(1, 0)] }, { records, abortedTransactions: [aborted(1, 0)] }] }] }
    const filtered = committedOnly(response)
    expect(filtered.responses[0]!.partitions[0]).toBe(response.responses[0]!.partitions[0])
    expect(filtered.responses[0]!.partitions[1]).toBe(response.responses[0]!.partitions[1])
    expect(filtered.responses[0]!.partitions[2]!.records!.map((b) => b.name)).toEqual(['abort'])
    expect(response.responses[0]!.partitions[2]!.records).toEqual([data('a', 1, 0), marker('abort', 1, 1)])
  })

  // A log of transactions from a few producers; a response is any run of its batches, listing
  // the aborted transactions that reach into it, as the broker does; any of the aborted data
  // batches may be missing already (the client's own filter). Exactly the committed data batches
  // and every control batch must be left.
  it('given any log and any window of it, when filtered, then exactly the committed data batches and the control batches are left', () => {
    const step = fc.record({ producer: fc.integer({ min: 1, max: 3 }), batches: fc.integer({ min: 0, max: 3 }), commit: fc.boolean() })
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), fc.nat(), fc.nat(), fc.array(fc.boolean(), { maxLength: 40 }), (steps, from, length, taken) => {
        const log: (Batch & { committed: boolean })[] = []
        const transactions: (AbortedTransaction & { lastOffset: bigint })[] = []
        for (const [i, s] of steps.entries()) {
          const first = log.length
          for (let b = 0; b < s.batches; b++) log.push({ ...data(`t${i}-${b}`, s.producer, log.length), committed: s.commit })
          log.push({ ...marker(`t${i}-marker`, s.producer, log.length), committed: true })
          if (!s.commit) transactions.push({ ...aborted(s.producer, first), lastOffset: BigInt(log.length - 1) })
        }
        const start = log.length === 0 ? 0 : from % log.length
        const window = log.slice(start, start + length)
        if (window.length === 0) return
        const end = window[window.length - 1]!.firstOffset
        const listed = transactions.filter((t) => t.lastOffset >= BigInt(start) && t.firstOffset <= end).map(({ producerId, firstOffset }) => ({ producerId, firstOffset }))
        const seen = window.filter((b, i) => b.committed || b.attributes !== 0 || !taken[i])
        expect(kept(committedOnly(answer(seen, listed)))).toEqual(seen.filter((b) => b.committed).map((b) => b.name))
      }),
    )
  })
})

describe('CommittedConsumer', () => {
  const dirty = answer([data('a', 1, 0), data('a', 1, 1), marker('abort', 1, 2), data('c', 1, 3)], [aborted(1, 0)])
  const consumer = (): CommittedConsumer => new CommittedConsumer({ clientId: 'unit', groupId: 'unit', bootstrapBrokers: ['localhost:1'] })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('given a fetch awaited as a promise, when the client answers, then the answer is filtered', async () => {
    vi.spyOn(Consumer.prototype, 'fetch').mockImplementation((() => Promise.resolve(dirty)) as never)
    const response = await consumer().fetch({ node: 1, topics: [] })
    expect(kept(response as never)).toEqual(['abort', 'c'])
  })

  it('given a fetch with a callback (as the message stream makes), when the client answers, then the callback gets the filtered answer', async () => {
    vi.spyOn(Consumer.prototype, 'fetch').mockImplementation(((_: unknown, callback: (error: Error | null, response?: unknown) => void) => callback(null, dirty)) as never)
    const response = await new Promise((resolve, reject) => consumer().fetch({ node: 1, topics: [] }, (error, r) => (error ? reject(error) : resolve(r))))
    expect(kept(response as never)).toEqual(['abort', 'c'])
  })

  it('given a fetch with a callback, when the client fails, then the callback gets the error', async () => {
    const failure = new Error('no broker')
    vi.spyOn(Consumer.prototype, 'fetch').mockImplementation(((_: unknown, callback: (error: Error | null) => void) => callback(failure)) as never)
    const error = await new Promise((resolve) => consumer().fetch({ node: 1, topics: [] }, (e) => resolve(e)))
    expect(error).toBe(failure)
  })
})
