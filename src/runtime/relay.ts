import type { Logger } from 'pino'

import { errorCauses } from '../kafka/explain.js'
import { FencedError, type MessageBus, type PartitionWriter, type ProducedRecord } from '../kafka/port.js'
import type { RuntimeObserver } from '../observe/observer.js'
import type { Crasher } from './crash.js'
import type { LocalStore, OutboxRow, QueuedRow } from './local-store.js'

const STUCK_AFTER_MS = 60_000
// Changelog records per transaction at most (whole units): a partition far behind commits in steps.
const COMMIT_BATCH = 2000

/** Handled up to `next` (the next offset to read), with every row of it at or below sequence `through`. */
interface Mark {
  through: number
  next: bigint
}

/** A partition this instance owns: its writer, what it handled, and what of that is not yet sent or committed. */
export class Owned {
  ready = false
  readonly marks: Mark[] = []
  /** Outputs not yet acknowledged, in order; the first `sending` of them are in flight. */
  readonly outputs: QueuedRow[] = []
  sending = 0
  /** Changelog records not yet committed, in order. */
  readonly changelog: QueuedRow[] = []
  committed: bigint | undefined
  lastCommitAt = 0
  flight: Promise<void> | undefined
  again = false
  failingSince: number | undefined
  timer: NodeJS.Timeout | undefined
  constructor(readonly writer: PartitionWriter) {}

  /** Handled but not yet committed: input records, outputs or changelog records that a new owner would not see. */
  get behind(): boolean {
    return this.marks.length > 0 || this.outputs.length > 0 || this.changelog.length > 0
  }

  handled(through: number, next: bigint): void {
    // A record handed over again (a reopened stream starts at the committed offset) moves nothing back.
    const last = this.marks.at(-1)?.next ?? this.committed
    this.marks.push({ through, next: last !== undefined && last > next ? last : next })
  }

  release(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }
}

export interface RelayOptions {
  store: LocalStore
  bus: MessageBus
  owned: Map<number, Owned>
  /** In a group, outputs and progress follow the partitions owned here; outside one, everything goes out plainly. */
  grouped: () => boolean
  crash: Crasher
  log: Logger
  observer?: RuntimeObserver
  /** Nothing has gone out for this long: the member is not coming back by retrying. */
  onStuck: (error: Error) => void
  /** Another instance owns the partition now: everything of it here is to be forgotten. */
  onFenced: (part: number) => void
  /** How often, at most, a partition commits its changelog records and offset. */
  commitIntervalMs: number
}

/**
 * Two paths out. Outputs go at once, through the bus's idempotent producer, batched across
 * partitions, in order within each. A partition's changelog records and its consumed offset go
 * later, through that partition's transactional writer, and only as far as every output of the
 * records they cover has been acknowledged: a new owner, fenced or not, never starts past an output
 * that did not go out. Rows of no partition (an HTTP request) wait in the file's outbox.
 */
export class Relay {
  readonly #o: RelayOptions
  #flight: Promise<void> | undefined
  #again = false
  #failingSince: number | undefined
  /** Stopping: commits go out at once, whatever the interval. */
  draining = false

  constructor(options: RelayOptions) {
    this.#o = options
  }

  /** Rows of an owned partition whose transaction committed: queued for the two paths. */
  queue(rows: QueuedRow[]): void {
    for (const row of rows) {
      const owned = this.#o.owned.get(row.part)
      if (!owned) continue
      if (row.destPartition !== null && row.topic === this.#o.store.changelog) owned.changelog.push(row)
      else owned.outputs.push(row)
    }
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
      const groups: { rows: (OutboxRow | QueuedRow)[]; owned?: Owned }[] = loose.length > 0 ? [{ rows: loose }] : []
      if (grouped) {
        for (const owned of this.#o.owned.values()) {
          const fresh = owned.outputs.slice(owned.sending)
          if (fresh.length === 0) continue
          owned.sending += fresh.length
          groups.push({ rows: fresh, owned })
        }
      }
      if (groups.length === 0) return
      const rows = groups.flatMap((g) => g.rows)
      try {
        await this.#sent(rows, null, (records) => this.#o.bus.publish(records))
      } catch (error) {
        for (const group of groups) if (group.owned) group.owned.sending -= group.rows.length
        throw error
      }
      for (const group of groups) this.#acknowledged(group)
    }
  }

  #acknowledged(group: { rows: (OutboxRow | QueuedRow)[]; owned?: Owned }): void {
    this.#o.crash.maybe('after-publish', this.#o.crash.typeIn('after-publish', group.rows))
    if (!group.owned) {
      this.#o.store.markSent(group.rows as OutboxRow[])
      return
    }
    group.owned.outputs.splice(0, group.rows.length)
    group.owned.sending -= group.rows.length
    for (const [part, owned] of this.#o.owned) if (owned === group.owned) this.schedule(part)
  }

  /** Commits the partition's progress once the interval since its last commit has passed. */
  schedule(part: number): void {
    const owned = this.#o.owned.get(part)
    if (!owned?.ready || owned.timer) return
    const wait = this.draining ? 0 : Math.max(0, owned.lastCommitAt + this.#o.commitIntervalMs - Date.now())
    owned.timer = setTimeout(() => {
      owned.timer = undefined
      void this.commit(part)
    }, wait)
  }

  /** Commits what the partition can commit now: its changelog records and offset, up to its first unacknowledged output. */
  commit(part: number): Promise<void> {
    const owned = this.#o.owned.get(part)
    if (!owned?.ready) return Promise.resolve()
    if (owned.flight) {
      owned.again = true
      return owned.flight
    }
    let failed = false
    owned.flight = this.#commitPartition(part, owned)
      .catch((error: Error) => {
        failed = true
        if (error instanceof FencedError) {
          // Another instance owns it now; the group will tell us so. Until then, nothing of it is ours.
          this.#o.log.warn({ partition: part, err: error }, 'partition fenced off; it is handled elsewhere now')
          if (this.#o.owned.get(part) === owned) this.#o.onFenced(part)
          return
        }
        this.#o.log.warn({ partition: part, err: error, causes: errorCauses(error) }, 'partition commit failed; will retry')
        // A partition that cannot commit for this long is not coming back by retrying (a consumer
        // that lost its membership, say): join again as a fresh member.
        owned.failingSince ??= Date.now()
        if (Date.now() - owned.failingSince > STUCK_AFTER_MS) this.#o.onStuck(new Error(`partition ${part} could not commit for ${STUCK_AFTER_MS / 1000} s: ${error.message}`))
      })
      .finally(() => {
        owned.flight = undefined
        // After a failure the relay loop retries, a second later: no tight loop against a sick broker.
        if (!failed && owned.again && this.#o.owned.get(part) === owned) {
          owned.again = false
          this.schedule(part)
        }
      })
    return owned.flight
  }

  async #commitPartition(part: number, owned: Owned): Promise<void> {
    for (;;) {
      owned.again = false
      const bound = owned.outputs[0]?.seq ?? Number.MAX_SAFE_INTEGER
      const { rows, complete } = committable(owned.changelog, bound)
      const covered = complete ? bound - 1 : rows[rows.length - 1]!.seq
      let upTo = -1
      while (upTo + 1 < owned.marks.length && owned.marks[upTo + 1]!.through <= covered) upTo++
      const next = upTo >= 0 ? owned.marks[upTo]!.next : undefined
      const offset = next !== undefined && next !== owned.committed ? next : undefined
      if (rows.length === 0 && offset === undefined) {
        owned.marks.splice(0, upTo + 1)
        return
      }
      await this.#sent(latestPerKey(rows), part, (records) => owned.writer.commit(records, offset))
      owned.lastCommitAt = Date.now()
      owned.failingSince = undefined
      this.#o.crash.reached('after-changelog', part, Math.max(rows[rows.length - 1]?.seq ?? -1, upTo >= 0 ? owned.marks[upTo]!.through : -1))
      // Revoked meanwhile: the next owner restores from what the changelog says now.
      if (this.#o.owned.get(part) !== owned) return
      owned.changelog.splice(0, rows.length)
      owned.marks.splice(0, upTo + 1)
      if (offset !== undefined) owned.committed = offset
      if (complete) return
    }
  }

  async #sent(rows: (OutboxRow | QueuedRow)[], part: number | null, send: (records: ProducedRecord[]) => Promise<void>): Promise<void> {
    const records = rows.map(produced)
    const done = this.#o.observer?.sending(records, part)
    try {
      await send(records)
    } catch (error) {
      done?.(error as Error)
      throw error
    }
    done?.()
  }
}

/**
 * The changelog records below the partition's first unacknowledged output, in whole units (a
 * unit's outputs come before its changelog records, so none of them straddles the bound), at most
 * COMMIT_BATCH of them plus the rest of the last unit reached; `complete` when that is all below it.
 */
function committable(changelog: QueuedRow[], bound: number): { rows: QueuedRow[]; complete: boolean } {
  let end = 0
  while (end < changelog.length && changelog[end]!.seq < bound && (end < COMMIT_BATCH || changelog[end]!.unit === changelog[end - 1]!.unit)) end++
  const complete = end === changelog.length || changelog[end]!.seq >= bound
  return { rows: changelog.slice(0, end), complete }
}

/** Within one transaction only the last record of a key matters to a compacted topic (and to a restore). */
function latestPerKey(rows: QueuedRow[]): QueuedRow[] {
  const last = new Map<string, QueuedRow>()
  for (const row of rows) {
    last.delete(row.key)
    last.set(row.key, row)
  }
  return [...last.values()]
}

function produced(row: OutboxRow | QueuedRow): ProducedRecord {
  return {
    topic: row.topic,
    key: row.key,
    value: row.value,
    ...(row.headers ? { headers: JSON.parse(row.headers) as Record<string, string> } : {}),
    ...(row.destPartition !== null ? { partition: row.destPartition } : {}),
  }
}
