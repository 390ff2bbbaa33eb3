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
 */
export class Flow {
  readonly #o: FlowOptions
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
  #closed = false
  /** The record being handled: a new stream hands nothing over before it settles. */
  #inFlight: Promise<void> | undefined
  #failingSince: number | undefined
  #attempt = 0

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

  #attach(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    // Offsets listed, or a record: the partitions' leaders answer again, and a failure after this
    // starts a new episode.
    const answered = (): void => {
      if (stream !== this.#stream) return
      this.#attempt = 0
      this.#failingSince = undefined
    }
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
    this.#attach(stream)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#stream.pause()
    await closeQuietly(() => this.#stream.close())
  }
}
