import type { BaseOptions, Consumer } from '@platformatic/kafka'

import type { RetryInPlace } from './port.js'

// Failed requests retried in place: 250 ms doubling to 2 s between attempts.
const RETRY_FIRST_DELAY_MS = 250
const RETRY_MAX_DELAY_MS = 2_000
// Retries in a row before the consumer counts as away from the broker: a single refused request
// (a leader that just moved) is routine, three in a row (~750 ms) are not.
const LOST_AFTER_RETRIES = 2

/** The client's back-off between retries (its retryDelay option): attempt 1 waits 250 ms, each next one twice as long, at most 2 s. */
export function backoffDelay(attempt: number): number {
  return Math.min(RETRY_MAX_DELAY_MS, RETRY_FIRST_DELAY_MS * 2 ** Math.max(0, attempt - 1))
}

/** How many retries of `backoffDelay` fill `windowMs`, not counting the time the attempts themselves take. */
export function retriesWithin(windowMs: number): number {
  let retries = 0
  for (let waited = 0; waited < windowMs; ) waited += backoffDelay(++retries)
  return retries
}

/**
 * A consumer's retries in place. Each retry takes fresh metadata (the client does so on a closed
 * connection or a stale leader) and finds the coordinator again (on NOT_COORDINATOR or a lost
 * connection): fetches and heartbeats follow a moved leader or coordinator, the stream goes on.
 */
export function retrySettings(options: RetryInPlace): Pick<BaseOptions, 'retries' | 'retryDelay'> {
  return options.retryWithinMs ? { retries: retriesWithin(options.retryWithinMs), retryDelay: (_client, _operation, attempt) => backoffDelay(attempt) } : {}
}

/**
 * Says when the consumer is away from the broker (its requests keep failing and are retried) and
 * when it is back (the coordinator answers a heartbeat, or a join completes: call the function
 * returned). Counts every retry.
 */
export function watchConnection(consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, options: RetryInPlace, closed: () => boolean): () => void {
  let away = false
  consumer.on('client:performWithRetry:retry', (operation: string, attempt: number) => {
    if (closed()) return
    options.onRetry?.(operation)
    if (away || attempt < LOST_AFTER_RETRIES) return
    away = true
    options.onConnection?.({ kind: 'lost', reason: `the consumer's ${operation} requests fail; retried in place` })
  })
  const answered = (): void => {
    if (!away || closed()) return
    away = false
    options.onConnection?.({ kind: 'back' })
  }
  consumer.on('consumer:heartbeat:end', answered)
  return answered
}

/**
 * A produce refused by a partition's old leader (NOT_LEADER_OR_FOLLOWER while leadership moves) is
 * retried by the client on the metadata it already has: in a rolling restart it kept failing for
 * about 6 s, 1 s apart, and the send that followed on a fresh producer went through at once. Such a
 * refusal wrote nothing, so it is given up quickly (five retries 100 ms apart), and the relay's next
 * send starts from a fresh producer (`Publisher#sendOnce`). Other failures keep the backoff.
 */
export function produceRetryDelay(_client: object, _operation: string, attempt: number, _retries: number, error: unknown): number {
  const e = error as { findBy?: (property: string, value: unknown) => unknown }
  return typeof e?.findBy === 'function' && e.findBy('hasStaleMetadata', true) ? 100 : backoffDelay(attempt)
}

// Back-to-back transactions of one partition meet CONCURRENT_TRANSACTIONS most of the time; on a
// loaded machine five retries (10 + 20 + … ms) ran out while markers were still being written.
export const TRANSACTION_RETRIES = 20

// The coordinator answers CONCURRENT_TRANSACTIONS while it still writes the previous transaction's
// markers, which takes milliseconds: retrying after the general 200 ms made one transaction in
// six of a busy partition wait that long. The Java client retries this case after 20 ms too.
export function transactionRetryDelay(_client: unknown, _operation: string, attempt: number, _retries: number, error: unknown): number {
  const e = error as { findBy?: (property: string, value: unknown) => unknown }
  const concurrent = typeof e?.findBy === 'function' && Boolean(e.findBy('apiId', 'CONCURRENT_TRANSACTIONS'))
  return concurrent ? 10 * attempt : 200
}
