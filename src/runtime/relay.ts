import type { Logger } from 'pino'

import { errorCauses } from '../kafka/explain.js'
import type { MessageBus } from '../kafka/port.js'
import type { RuntimeObserver } from '../observe/observer.js'
import type { Commits } from './commits.js'
import type { Crasher } from './crash.js'
import type { LocalStore, OutboxRow, QueuedRow } from './local-store.js'
import type { OwnedPartition } from './owned-partition.js'
import type { Ownership } from './ownership.js'
import { sendRows, STUCK_AFTER_MS } from './send.js'

export interface RelayOptions {
  store: LocalStore
  bus: MessageBus
  ownership: Ownership
  /** The second path out, after the outputs (commits.ts). */
  commits: Commits
  /** In a group, outputs and progress follow the partitions owned here; outside one, everything goes out plainly. */
  grouped: () => boolean
  crash: Crasher
  log: Logger
  observer?: RuntimeObserver
  /** Nothing has gone out for this long: the member is not coming back by retrying. */
  onStuck: (error: Error) => void
}

type Group = { rows: (OutboxRow | QueuedRow)[]; owned?: OwnedPartition }

/**
 * Two paths out. Outputs go at once, through the bus's idempotent producer, batched across
 * partitions, in order within each. A partition's changelog records and its consumed offset go
 * later (commits.ts), and only as far as every output of the records they cover has been
 * acknowledged. Rows of no partition (an HTTP request) wait in the file's outbox.
 */
export class Relay {
  readonly #o: RelayOptions
  #flight: Promise<void> | undefined
  #again = false
  #failingSince: number | undefined

  constructor(options: RelayOptions) {
    this.#o = options
  }

  /** Sends the outputs, and commits the progress of this owned partition, or of every owned partition that is due (null). */
  send(part: number | null = null): Promise<void> {
    const { ownership, commits } = this.#o
    if (part !== null && ownership.owns(part)) return this.publish().then(() => commits.commit(part))
    for (const p of ownership.partitions()) commits.schedule(p)
    return this.publish()
  }

  /** Sends every waiting output; resolves when none was left (or a send failed: retried later). */
  publish(): Promise<void> {
    if (this.#flight) {
      this.#again = true
      return this.#flight
    }
    this.#flight = this.#publishOutputs()
      .then(() => (this.#failingSince = undefined))
      .catch((error: Error) => {
        this.#o.log.warn({ err: error, causes: errorCauses(error) }, 'outbox relay failed; will retry')
        this.#failingSince ??= Date.now()
        if (Date.now() - this.#failingSince > STUCK_AFTER_MS) this.#o.onStuck(new Error(`the outbox could not be published for ${STUCK_AFTER_MS / 1000} s: ${error.message}`))
        this.#again = false
      })
      .finally(() => {
        this.#flight = undefined
        if (this.#again) {
          this.#again = false
          void this.publish()
        }
      })
    return this.#flight
  }

  async #publishOutputs(): Promise<void> {
    const { store } = this.#o
    for (;;) {
      this.#again = false
      const grouped = this.#o.grouped()
      const loose = grouped ? store.unsentLoose() : store.unsentAll()
      // Each group is acknowledged (or not) as a whole: the file's rows, then each owned partition's.
      const groups: Group[] = loose.length > 0 ? [{ rows: loose }] : []
      if (grouped) {
        for (const owned of this.#o.ownership.all()) {
          const fresh = owned.takeUnsent()
          if (fresh.length > 0) groups.push({ rows: fresh, owned })
        }
      }
      if (groups.length === 0) return
      const rows = groups.flatMap((g) => g.rows)
      try {
        await sendRows(this.#o.observer, rows, null, (records) => this.#o.bus.publish(records))
      } catch (error) {
        for (const group of groups) group.owned?.unsent(group.rows.length)
        throw error
      }
      for (const group of groups) this.#acknowledged(group)
    }
  }

  #acknowledged(group: Group): void {
    this.#o.crash.maybe('after-publish', this.#o.crash.typeIn('after-publish', group.rows))
    if (!group.owned) {
      this.#o.store.markSent(group.rows as OutboxRow[])
      return
    }
    const { owned } = group
    owned.acknowledged(group.rows.length)
    if (this.#o.ownership.holds(owned.partition, owned)) this.#o.commits.schedule(owned.partition)
  }
}
