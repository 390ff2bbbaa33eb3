import type { Consumer, Message, MessagesStream } from '@platformatic/kafka'

import { closeQuietly } from './client.js'
import type { RetryInPlace } from './port.js'
import { backoffDelay } from './retry.js'

interface FlowOptions {
  topic: string
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
  /** A new stream on the same consumer: same membership, same assignment. */
  reopen: () => Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>>
  /** One record; a promise holds the next one back until it settles. */
  onMessage: (message: Message<Buffer, Buffer, Buffer, Buffer>) => void | Promise<void>
  fail: (error: Error) => void
  options: RetryInPlace
}

/**
 * Keeps a consumer's records flowing, one at a time, across failures of its stream. The client
 * ends a stream for good on a request that failed past its retries, or at once on some it does not
 * retry (a leader missing from fresh metadata while a dead broker is not yet fenced; offsets listed
 * on a join, against such a leader). Within `retryWithinMs` of the first failure a new stream is
 * opened on the same consumer, with backoff: the group membership, and so every partition, stays.
 * Past it, or without that setting, `fail` has the error.
 *
 * A partition that stays here goes on from the record after the last one handed over, whatever
 * the group's committed offset says: the handler's state is exactly as far as what it was given.
 * The committed offset may be ahead of it, when another member owned the partition meanwhile (this
 * process was frozen past its session, say); starting there would skip records this state never
 * saw, and its outputs would then disagree with the owner's.
 */
export class Flow {
  readonly #o: FlowOptions
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
  #closed = false
  /** The record being handled: a new stream hands nothing over before it settles. */
  #inFlight: Promise<void> | undefined
  #failingSince: number | undefined
  #attempt = 0
  /** Per partition kept here: the offset after the last record handed over. */
  readonly #next = new Map<number, bigint>()

  constructor(options: FlowOptions) {
    this.#o = options
    this.#stream = options.stream
    // A stream that ends leaves the topic's subscription unless another holds it: this one is
    // held for the consumer's life, so a reopened stream needs no join and no rebalance.
    options.consumer.topics.track(options.topic)
    this.#attach(options.stream)
  }

  get stream(): MessagesStream<Buffer, Buffer, Buffer, Buffer> {
    return this.#stream
  }

  /** The record was handed to the handler: its partition goes on after it. */
  handed(partition: number, offset: bigint): void {
    this.#next.set(partition, offset + 1n)
  }

  /** The partition left, or comes back restored: it starts where the stream's own offsets say. */
  forget(partition: number): void {
    this.#next.delete(partition)
  }

  /** A partition kept here resumes after the last record handed over. */
  #resume(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    for (const [partition, next] of this.#next) stream.offsetsToFetch.set(`${this.#o.topic}:${partition}`, next)
  }

  #attach(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>, replacing = false): void {
    // Offsets listed, or a record: the partitions' leaders answer again, and a failure after this
    // starts a new episode.
    const answered = (): void => {
      if (stream !== this.#stream) return
      this.#attempt = 0
      this.#failingSince = undefined
    }
    // A replacement stream lists the group's committed offsets before its first fetch: a partition
    // kept here is put back where it was. Later listings (a join, an offset out of range) are the
    // client's: a join re-lists only offsets this member committed, or the partition was restored.
    if (replacing) stream.once('offsets', () => stream === this.#stream && this.#resume(stream))
    stream.on('offsets', answered)
    stream.on('data', (message: Message<Buffer, Buffer, Buffer, Buffer>) => {
      if (this.#closed || stream !== this.#stream) return
      if (this.#failingSince !== undefined) answered()
      let result: void | Promise<void>
      try {
        result = this.#o.onMessage(message)
      } catch (error) {
        this.#o.fail(error as Error)
        return
      }
      if (result && typeof result.then === 'function') {
        stream.pause()
        const settled = result.then(
          () => {
            if (!this.#closed && stream === this.#stream) stream.resume()
          },
          (error: Error) => this.#o.fail(error),
        )
        this.#inFlight = settled
      }
    })
    stream.on('error', (error: Error) => {
      if (this.#closed || stream !== this.#stream) return
      void this.#recover(error)
    })
  }

  async #recover(error: Error): Promise<void> {
    const within = this.#o.options.retryWithinMs ?? 0
    this.#failingSince ??= Date.now()
    if (this.#o.consumer.memberId === null || Date.now() - this.#failingSince >= within) {
      this.#o.fail(error)
      return
    }
    this.#o.options.onRetry?.('stream')
    await new Promise((resolve) => setTimeout(resolve, backoffDelay(++this.#attempt)))
    await this.#inFlight
    if (this.#closed) return
    let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
    try {
      stream = await this.#o.reopen()
    } catch (failure) {
      await this.#recover(failure as Error)
      return
    }
    if (this.#closed) {
      await closeQuietly(() => stream.close())
      return
    }
    this.#stream = stream
    this.#attach(stream, true)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#stream.pause()
    await closeQuietly(() => this.#stream.close())
  }
}
