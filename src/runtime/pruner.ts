import type { Logger } from 'pino'

import type { Db } from '../db/database.js'
import { tombstoneKeys, verdict, type Entry, type RetentionRule } from './retention.js'

/** Rows per SQLite transaction: small enough that the consumer never waits long behind one. */
export const PRUNE_BATCH = 500

export interface PruneCounts {
  /** Entries (orders, or dead-lettered positions) forgotten: their state, processed ids and changelog keys. */
  entries: number
  processed_ids: number
  states: number
  tombstones: number
  /** Sent outbox rows deleted. */
  outbox_rows: number
  /** Entries with old processed ids that were kept, by why. */
  kept: { recent: number; timer: number; unsettled: number }
}

export interface PrunerOptions {
  db: Db
  rule: RetentionRule
  /** How long sent outbox rows stay. */
  sentOutboxKeepMs: number
  /** Partitions whose rows may be pruned now; null: every partition in the file (a role outside a group, or a file on its own). */
  scope: () => number[] | null
  /**
   * Forgets a batch of one partition's entries: deletes their rows and tombstones their changelog
   * keys, all or nothing. False when the partition is no longer this instance's to prune.
   */
  forget: (part: number, entries: Entry[]) => boolean | Promise<boolean>
  clock?: () => number
  batch?: number
  log?: Logger
}

export function emptyCounts(): PruneCounts {
  return { entries: 0, processed_ids: 0, states: 0, tombstones: 0, outbox_rows: 0, kept: { recent: 0, timer: 0, unsettled: 0 } }
}

/**
 * Walks each partition's processed ids oldest first, in batches, and forgets the entries the
 * retention rule allows; then deletes sent outbox rows past their window. Yields to the event
 * loop between batches, so a consumer in the same process keeps going.
 */
export class Pruner {
  readonly #o: PrunerOptions
  readonly #clock: () => number
  readonly #batch: number
  readonly #q
  #timer: NodeJS.Timeout | undefined
  #running: Promise<PruneCounts> | undefined
  #stopped = false

  constructor(options: PrunerOptions) {
    this.#o = options
    this.#clock = options.clock ?? Date.now
    this.#batch = options.batch ?? PRUNE_BATCH
    const sqlite = options.db.$client
    this.#q = {
      nextPart: sqlite.prepare('SELECT min(part) FROM processed_messages WHERE part > ?').pluck(),
      oldSeen: sqlite.prepare(
        'SELECT rowid, seen_key AS key, processed_at AS at FROM processed_messages WHERE part = @part AND processed_at < @cutoff AND (processed_at, rowid) > (@at, @rowid) ORDER BY processed_at, rowid LIMIT @limit',
      ),
      statesOf: sqlite.prepare('SELECT scope, value, updated_at AS updatedAt FROM state WHERE key = ?'),
      seenOf: sqlite.prepare('SELECT count(*) AS n, max(processed_at) AS last FROM processed_messages WHERE seen_key = ?'),
      timerOf: sqlite.prepare('SELECT 1 FROM timers WHERE key = ?').pluck(),
      countSent: sqlite.prepare('SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND sent_at < @cutoff AND (@scope IS NULL OR part IS NULL OR part IN (SELECT value FROM json_each(@scope)))').pluck(),
      deleteSent: sqlite.prepare(
        'DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at < @cutoff AND (@scope IS NULL OR part IS NULL OR part IN (SELECT value FROM json_each(@scope))) LIMIT @limit)',
      ),
    }
  }

  /** Prunes every `intervalMs` in the background; a run still going skips the next tick. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => {
      if (this.#running) return
      this.run().catch((error: Error) => this.#o.log?.warn({ err: error }, 'retention: pruning failed; will try again'))
    }, intervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#running?.catch(() => undefined)
  }

  /** One pass over what is in scope now. With dryRun, counts what would go and changes nothing. */
  run({ dryRun = false } = {}): Promise<PruneCounts> {
    const pass = this.#pass(dryRun).finally(() => {
      if (this.#running === pass) this.#running = undefined
    })
    this.#running = pass
    return pass
  }

  async #pass(dryRun: boolean): Promise<PruneCounts> {
    const counts = emptyCounts()
    const scope = this.#o.scope()
    for (const part of scope ?? this.#allParts()) {
      if (this.#stopped) break
      await this.#prunePartition(part, dryRun, counts)
    }
    await this.#pruneOutbox(scope, dryRun, counts)
    if (!dryRun && (counts.entries > 0 || counts.outbox_rows > 0)) this.#o.log?.info({ ...counts }, 'retention: pruned')
    return counts
  }

  #allParts(): number[] {
    const parts: number[] = []
    for (let p = this.#q.nextPart.get(-1) as number | null; p !== null; p = this.#q.nextPart.get(p) as number | null) parts.push(p)
    return parts
  }

  async #prunePartition(part: number, dryRun: boolean, counts: PruneCounts): Promise<void> {
    const seen = new Set<string | null>()
    let cursor = { at: -1, rowid: -1 }
    for (;;) {
      if (this.#stopped) return
      // Decided and forgotten in one turn: nothing of this partition can change in between.
      const cutoff = this.#clock() - this.#o.rule.retentionMs
      const rows = this.#q.oldSeen.all({ part, cutoff, at: cursor.at, rowid: cursor.rowid, limit: this.#batch }) as { rowid: number; key: string | null; at: number }[]
      if (rows.length === 0) return
      const last = rows[rows.length - 1]!
      cursor = { at: last.at, rowid: last.rowid }
      const chosen: Entry[] = []
      let ids = 0
      for (const { key } of rows) {
        if (seen.has(key)) continue
        seen.add(key)
        if (key === null) continue
        const { entry, processedIds } = this.#entry(key)
        const v = verdict(entry, this.#clock(), this.#o.rule)
        if (v.forget) {
          chosen.push(entry)
          ids += processedIds
        } else counts.kept[v.why]++
      }
      if (chosen.length > 0 && (dryRun || (await this.#o.forget(part, chosen)))) {
        counts.entries += chosen.length
        counts.processed_ids += ids
        counts.states += chosen.reduce((n, e) => n + e.states.length, 0)
        counts.tombstones += chosen.reduce((n, e) => n + tombstoneKeys(e).length, 0)
      } else if (chosen.length > 0) return
      await yieldToOthers()
    }
  }

  #entry(key: string): { entry: Entry; processedIds: number } {
    const states = (this.#q.statesOf.all(key) as { scope: string; value: string; updatedAt: number }[]).map((s) => ({ scope: s.scope, value: JSON.parse(s.value) as unknown, updatedAt: s.updatedAt }))
    const seen = this.#q.seenOf.get(key) as { n: number; last: number | null }
    const entry: Entry = { key, states, lastProcessedAt: seen.last ?? undefined, hasTimer: this.#q.timerOf.get(key) !== undefined }
    return { entry, processedIds: seen.n }
  }

  async #pruneOutbox(scope: number[] | null, dryRun: boolean, counts: PruneCounts): Promise<void> {
    const params = () => ({ cutoff: this.#clock() - this.#o.sentOutboxKeepMs, scope: scope === null ? null : JSON.stringify(scope) })
    if (dryRun) {
      counts.outbox_rows += this.#q.countSent.get(params()) as number
      return
    }
    for (;;) {
      if (this.#stopped) return
      const deleted = this.#q.deleteSent.run({ ...params(), limit: this.#batch }).changes
      counts.outbox_rows += deleted
      if (deleted < this.#batch) return
      await yieldToOthers()
    }
  }
}

/** Deletes an entry's rows from a file with no runtime around it (`sagactl gc`), in one transaction. */
export function deleteEntries(db: Db, entries: Entry[]): void {
  const sqlite = db.$client
  const deleteState = sqlite.prepare('DELETE FROM state WHERE scope = ? AND key = ?')
  const deleteSeen = sqlite.prepare('DELETE FROM processed_messages WHERE seen_key = ?')
  sqlite
    .transaction(() => {
      for (const e of entries) {
        for (const s of e.states) deleteState.run(s.scope, e.key)
        deleteSeen.run(e.key)
      }
    })
    .immediate()
}

/** The changelog keys of a batch, for the runtime's `forget`. */
export function keysOf(entries: Entry[]): string[] {
  return entries.flatMap(tombstoneKeys)
}

function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
