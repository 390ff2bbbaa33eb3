import type { PartitionWriter } from '../kafka/port.js'
import type { QueuedRow } from './local-store.js'

// Changelog records per transaction at most (whole units): a partition far behind commits in steps.
export const COMMIT_BATCH = 2000

/** Handled up to `next` (the next offset to read), with every row of it at or below sequence `through`. */
interface Mark {
  through: number
  next: bigint
}

/** What one commit of a partition takes: changelog records and an offset, up to its first unacknowledged output. */
export interface CommitPlan {
  /** The changelog records it covers, in order; `records` is what is sent of them. */
  readonly rows: QueuedRow[]
  readonly records: QueuedRow[]
  /** The consumed offset to commit, if it moved. */
  readonly offset: bigint | undefined
  /** How many of the partition's marks it covers. */
  readonly marks: number
  /** The highest sequence it covers, rows or marks (-1: none). */
  readonly through: number
  /** All that was committable; otherwise another commit follows at once. */
  readonly complete: boolean
}

/**
 * A partition this instance owns: its writer, what it handled, and what of that is not yet sent or
 * committed. Outputs leave through the relay, changelog records and the offset through the
 * partition's own writer, one commit at a time.
 */
export class OwnedPartition {
  #ready = false
  readonly #marks: Mark[] = []
  /** Outputs not yet acknowledged, in order; the first `#sending` of them are in flight. */
  readonly #outputs: QueuedRow[] = []
  #sending = 0
  /** Changelog records not yet committed, in order. */
  readonly #changelog: QueuedRow[] = []
  #committed: bigint | undefined
  #lastCommitAt = 0
  #flight: Promise<void> | undefined
  #again = false
  #failingSince: number | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(readonly writer: PartitionWriter) {}

  get partition(): number {
    return this.writer.partition
  }

  /** Restored from the changelog: its records may be handled, and its progress committed. */
  get ready(): boolean {
    return this.#ready
  }

  restored(): void {
    this.#ready = true
  }

  /** Handled but not yet committed: input records, outputs or changelog records that a new owner would not see. */
  get behind(): boolean {
    return this.#marks.length > 0 || this.#outputs.length > 0 || this.#changelog.length > 0
  }

  /** Rows waiting in memory, outputs and changelog records. */
  get queued(): number {
    return this.#outputs.length + this.#changelog.length
  }

  /** When the oldest row waiting was written (ms); null when none waits. */
  get oldestAt(): number | null {
    let oldestAt: number | null = null
    for (const first of [this.#outputs[0], this.#changelog[0]]) if (first && (oldestAt === null || first.at < oldestAt)) oldestAt = first.at
    return oldestAt
  }

  handled(through: number, next: bigint): void {
    // A record handed over again (a reopened stream starts at the committed offset) moves nothing back.
    const last = this.#marks.at(-1)?.next ?? this.#committed
    this.#marks.push({ through, next: last !== undefined && last > next ? last : next })
  }

  /** A row whose transaction committed: an output to send, or a changelog record to commit. */
  queue(row: QueuedRow, isChangelog: boolean): void {
    if (isChangelog) this.#changelog.push(row)
    else this.#outputs.push(row)
  }

  /** The outputs not yet sent, now counted as in flight. */
  takeUnsent(): QueuedRow[] {
    const fresh = this.#outputs.slice(this.#sending)
    this.#sending += fresh.length
    return fresh
  }

  /** The first `count` outputs in flight failed to go: they are sent again. */
  unsent(count: number): void {
    this.#sending -= count
  }

  /** The first `count` outputs were acknowledged: the changelog records after them may be committed. */
  acknowledged(count: number): void {
    this.#outputs.splice(0, count)
    this.#sending -= count
  }

  /** Calls `commit` once `intervalMs` have passed since the last commit, unless one is already scheduled. */
  schedule(intervalMs: number, commit: () => void): void {
    if (!this.#ready || this.#timer) return
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        commit()
      },
      Math.max(0, this.#lastCommitAt + intervalMs - Date.now()),
    )
  }

  /** Runs one commit at a time: asked during one, it gets that one, and `again` runs after it if it went well. */
  commitOnce(commit: () => Promise<void>, failed: (error: Error) => void, again: () => void): Promise<void> {
    if (this.#flight) {
      this.#again = true
      return this.#flight
    }
    let ok = true
    this.#flight = commit()
      .catch((error: Error) => {
        ok = false
        failed(error)
      })
      .finally(() => {
        this.#flight = undefined
        // After a failure the relay loop retries, a second later: no tight loop against a sick broker.
        if (ok && this.#again) {
          this.#again = false
          again()
        }
      })
    return this.#flight
  }

  /** Resolves once the commit in flight, if any, has settled. */
  settled(): Promise<void> {
    return this.#flight ?? Promise.resolve()
  }

  /** What the partition can commit now. A commit asked for before this is covered by it. */
  nextCommit(): CommitPlan {
    this.#again = false
    const bound = this.#outputs[0]?.seq ?? Number.MAX_SAFE_INTEGER
    const { rows, complete } = committable(this.#changelog, bound)
    const covered = complete ? bound - 1 : rows[rows.length - 1]!.seq
    let upTo = -1
    while (upTo + 1 < this.#marks.length && this.#marks[upTo + 1]!.through <= covered) upTo++
    const next = upTo >= 0 ? this.#marks[upTo]!.next : undefined
    const offset = next !== undefined && next !== this.#committed ? next : undefined
    const through = Math.max(rows[rows.length - 1]?.seq ?? -1, upTo >= 0 ? this.#marks[upTo]!.through : -1)
    return { rows, records: latestPerKey(rows), offset, marks: upTo + 1, through, complete }
  }

  /** Nothing of the plan needs sending: the marks it covers are done. */
  skipped(plan: CommitPlan): void {
    this.#marks.splice(0, plan.marks)
  }

  /** The plan went out: the partition may commit again at the interval's end. */
  sent(): void {
    this.#lastCommitAt = Date.now()
    this.#failingSince = undefined
  }

  /** The plan went out and the partition is still owned here: what it covered is forgotten. */
  committed(plan: CommitPlan): void {
    this.#changelog.splice(0, plan.rows.length)
    this.#marks.splice(0, plan.marks)
    if (plan.offset !== undefined) this.#committed = plan.offset
  }

  /** A commit failed: how long, in ms, the partition has been failing to commit. */
  failingFor(): number {
    this.#failingSince ??= Date.now()
    return Date.now() - this.#failingSince
  }

  /** No commit is to start from a timer any more. */
  release(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
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
