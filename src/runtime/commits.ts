import type { Logger } from 'pino'

import { errorCauses } from '../kafka/explain.js'
import { FencedError } from '../kafka/port.js'
import type { RuntimeObserver } from '../observe/observer.js'
import type { Crasher } from './crash.js'
import type { OwnedPartition } from './owned-partition.js'
import type { Ownership } from './ownership.js'
import { sendRows, STUCK_AFTER_MS } from './send.js'

export interface CommitsOptions {
  ownership: Ownership
  crash: Crasher
  log: Logger
  observer?: RuntimeObserver
  /** Nothing has been committed for this long: the member is not coming back by retrying. */
  onStuck: (error: Error) => void
  /** Another instance owns the partition now: everything of it here is to be forgotten. */
  onFenced: (part: number) => void
  /** How often, at most, a partition commits its changelog records and offset. */
  commitIntervalMs: number
}

/**
 * The second path out: a partition's changelog records and its consumed offset go through that
 * partition's transactional writer, at most once per interval, and only as far as every output of
 * the records they cover has been acknowledged: a new owner, fenced or not, never starts past an
 * output that did not go out.
 */
export class Commits {
  readonly #o: CommitsOptions
  /** Stopping: commits go out at once, whatever the interval. */
  draining = false

  constructor(options: CommitsOptions) {
    this.#o = options
  }

  /** Commits the partition's progress once the interval since its last commit has passed. */
  schedule(part: number): void {
    this.#o.ownership.get(part)?.schedule(this.draining ? 0 : this.#o.commitIntervalMs, () => void this.commit(part))
  }

  /** Commits what the partition can commit now: its changelog records and offset, up to its first unacknowledged output. */
  commit(part: number): Promise<void> {
    const { ownership } = this.#o
    const owned = ownership.get(part)
    if (!owned?.ready) return Promise.resolve()
    return owned.commitOnce(
      () => this.#commitPartition(part, owned),
      (error) => {
        if (error instanceof FencedError) {
          // Another instance owns it now; the group will tell us so. Until then, nothing of it is ours.
          this.#o.log.warn({ partition: part, err: error }, 'partition fenced off; it is handled elsewhere now')
          if (ownership.holds(part, owned)) this.#o.onFenced(part)
          return
        }
        this.#o.log.warn({ partition: part, err: error, causes: errorCauses(error) }, 'partition commit failed; will retry')
        // A partition that cannot commit for this long is not coming back by retrying (a consumer
        // that lost its membership, say): join again as a fresh member.
        if (owned.failingFor() > STUCK_AFTER_MS) this.#o.onStuck(new Error(`partition ${part} could not commit for ${STUCK_AFTER_MS / 1000} s: ${error.message}`))
      },
      () => {
        if (ownership.holds(part, owned)) this.schedule(part)
      },
    )
  }

  async #commitPartition(part: number, owned: OwnedPartition): Promise<void> {
    for (;;) {
      const plan = owned.nextCommit()
      if (plan.rows.length === 0 && plan.offset === undefined) {
        owned.skipped(plan)
        return
      }
      await sendRows(this.#o.observer, plan.records, part, (records) => owned.writer.commit(records, plan.offset))
      owned.sent()
      this.#o.crash.reached('after-changelog', part, plan.through)
      // Revoked meanwhile: the next owner restores from what the changelog says now.
      if (!this.#o.ownership.holds(part, owned)) return
      owned.committed(plan)
      if (plan.complete) return
    }
  }
}
