import { Consumer, type CallbackWithPromise, type FetchOptions, type fetchV17 } from '@platformatic/kafka'

// What Consumer#fetch answers: the client types it by its newest Fetch version.
type FetchResponse = fetchV17.FetchResponse

// Control batches (transaction markers) carry this attribute bit.
const IS_CONTROL = 1 << 5

export interface AbortedTransaction {
  producerId: bigint
  firstOffset: bigint
}

/** What the filter reads of a record batch. */
export interface BatchHead {
  producerId: bigint
  firstOffset: bigint
  lastOffsetDelta: number
  attributes: number
}

export interface PartitionAnswer<B extends BatchHead = BatchHead> {
  records?: B[] | null | undefined
  abortedTransactions: AbortedTransaction[] | null
}

export interface FetchAnswer<P extends PartitionAnswer = PartitionAnswer> {
  responses: { partitions: P[] }[]
}

/**
 * The response without the data batches of aborted transactions: the rule of the Java client
 * (`CompletedFetch`), which the client's own read_committed filter does not follow. It keeps one
 * aborted range per producer, so of several aborted transactions of one producer in one response
 * (a transactional id retried: same producer id, new epoch) only the last is dropped, and it keeps
 * a transaction whose abort marker is not in the response: both deliver aborted records as if they
 * were committed. The input is left as it is.
 */
export function committedOnly<R extends FetchAnswer>(response: R): R {
  // Every fetch of every role passes here; most list no aborted transaction at all.
  if (!response.responses.some((topic) => topic.partitions.some((p) => p.records && p.abortedTransactions?.length))) return response
  return {
    ...response,
    responses: response.responses.map((topic) => ({
      ...topic,
      partitions: topic.partitions.map((partition) =>
        partition.records && partition.abortedTransactions?.length ? { ...partition, records: committedBatches(partition.records, partition.abortedTransactions) } : partition,
      ),
    })),
  }
}

function committedBatches<B extends BatchHead>(batches: readonly B[], aborted: readonly AbortedTransaction[]): B[] {
  // Per producer, the first offsets of its aborted transactions not reached yet, lowest first.
  const pending = new Map<bigint, bigint[]>()
  for (const { producerId, firstOffset } of aborted) pending.set(producerId, [...(pending.get(producerId) ?? []), firstOffset])
  for (const starts of pending.values()) starts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  // Producers whose batches belong to an aborted transaction until their next control batch.
  const inAborted = new Set<bigint>()
  return batches.filter((batch) => {
    const starts = pending.get(batch.producerId)
    if (!starts) return true
    // A producer has one transaction open at a time, so a control batch ends every aborted
    // transaction that began at or before it. A start left pending would claim the producer's
    // next, committed, batch: that of a transaction whose data batches the client's own filter
    // already took out, or whose data came in an earlier response (this one begins at its marker).
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
    while (starts.length > 0 && starts[0]! <= last) {
      starts.shift()
      inAborted.add(batch.producerId)
    }
    if (batch.attributes & IS_CONTROL) {
      inAborted.delete(batch.producerId)
      // Kept: the stream moves its position past a transaction by its marker.
      return true
    }
    return !inAborted.has(batch.producerId)
  })
}

/**
 * The client's consumer with the read_committed rule above applied to every fetch: the ones our
 * reader makes and the ones its message streams make. The broker lists aborted transactions only
 * for read_committed fetches, so any other fetch passes unchanged.
 */
export class CommittedConsumer<Key = Buffer, Value = Buffer, HeaderKey = Buffer, HeaderValue = Buffer> extends Consumer<Key, Value, HeaderKey, HeaderValue> {
  override fetch(options: FetchOptions<Key, Value, HeaderKey, HeaderValue>, callback: CallbackWithPromise<FetchResponse>): void
  override fetch(options: FetchOptions<Key, Value, HeaderKey, HeaderValue>): Promise<FetchResponse>
  override fetch(options: FetchOptions<Key, Value, HeaderKey, HeaderValue>, callback?: CallbackWithPromise<FetchResponse>): void | Promise<FetchResponse> {
    if (callback) {
      super.fetch(options, (error, response) => (error || !response ? callback(error, response) : callback(null, committedOnly(response))))
      return
    }
    return super.fetch(options).then(committedOnly)
  }
}
