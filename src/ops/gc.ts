import fs from 'node:fs'
import path from 'node:path'

import type { Config } from '../config.js'
import { databasePath, openDatabase } from '../db/database.js'
import type { MessageBus } from '../kafka/port.js'
import { deleteEntries, Pruner, type PruneCounts } from '../runtime/pruner.js'
import { sentOutboxKeepMs, tombstoneKeys } from '../runtime/retention.js'
import type { RoleName } from '../saga/define.js'
import type { Saga } from '../saga/define.js'
import { roleNames } from '../saga/derive.js'
import { roleChangelog, roleHandler } from '../services/start-role.js'

export interface GcFileReport {
  role: RoleName
  /** The named instance whose directory holds the file; absent for SAGA_DATA_DIR itself. */
  instance?: string
  file: string
  /** The database with its -wal, in bytes, before and after. Deleted rows' pages are reused, so a file stops growing rather than shrinks. */
  bytes_before: number
  bytes_after: number
  /** What was pruned, or with --dry-run what would be. */
  pruned: PruneCounts
}

export interface GcReport {
  dry_run: boolean
  retention_ms: number
  files: GcFileReport[]
}

/** Every role file in SAGA_DATA_DIR (`<role>.db`) and its instance directories (`<id>/<role>.db`). */
export function roleFiles(dataDir: string, roles: readonly RoleName[]): { role: RoleName; instance?: string; file: string }[] {
  const found: { role: RoleName; instance?: string; file: string }[] = []
  const dirs: { instance?: string; dir: string }[] = [{ dir: dataDir }]
  if (fs.existsSync(dataDir)) {
    for (const d of fs.readdirSync(dataDir, { withFileTypes: true })) if (d.isDirectory()) dirs.push({ instance: d.name, dir: path.join(dataDir, d.name) })
  }
  for (const { instance, dir } of dirs) {
    for (const role of roles) {
      const file = databasePath(dir, role)
      if (fs.existsSync(file)) found.push({ role, ...(instance ? { instance } : {}), file })
    }
  }
  return found
}

export function fileBytes(file: string): number {
  return [file, `${file}-wal`].reduce((n, f) => n + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0)
}

/**
 * Prunes role files by the same rule the roles apply in the background. Entries of a role with a
 * changelog are tombstoned there first (a plain send, pinned to the entry's partition), then deleted
 * locally: the file is a cache of the changelog, and a local delete alone would be restored. Unsent
 * outbox rows are never touched (a partition's unsent rows are discarded when it is next restored,
 * so tombstones left there would never be sent).
 */
export async function gc(config: Config, saga: Saga, options: { roles?: RoleName[]; dryRun: boolean; bus: () => MessageBus }): Promise<GcReport> {
  const files: GcFileReport[] = []
  let bus: MessageBus | undefined
  for (const { role, instance, file } of roleFiles(config.dataDir, options.roles ?? roleNames(saga))) {
    const handler = roleHandler(role, config, saga)
    const changelog = roleChangelog(config, role, saga)
    const bytesBefore = fileBytes(file)
    const db = openDatabase(file)
    try {
      const pruner = new Pruner({
        db,
        rule: { retentionMs: config.retentionMs, ...(handler.settled ? { settled: handler.settled.bind(handler) } : {}) },
        sentOutboxKeepMs: sentOutboxKeepMs(config.retentionMs),
        scope: () => null,
        forget: async (part, entries) => {
          if (changelog) {
            bus ??= options.bus()
            await bus.publish(entries.flatMap(tombstoneKeys).map((key) => ({ topic: changelog, key, value: null, partition: part })))
          }
          deleteEntries(db, entries)
          return true
        },
      })
      const pruned = await pruner.run({ dryRun: options.dryRun })
      if (!options.dryRun) db.$client.pragma('wal_checkpoint(TRUNCATE)')
      files.push({ role, ...(instance ? { instance } : {}), file, bytes_before: bytesBefore, bytes_after: fileBytes(file), pruned })
    } finally {
      db.$client.close()
    }
  }
  await bus?.close()
  return { dry_run: options.dryRun, retention_ms: config.retentionMs, files }
}

export function renderGcReport(report: GcReport): string {
  const verb = report.dry_run ? 'would prune' : 'pruned'
  const lines = [`retention ${report.retention_ms} ms${report.dry_run ? ' (dry run: nothing changed)' : ''}`]
  if (report.files.length === 0) lines.push('no role database found')
  for (const f of report.files) {
    const p = f.pruned
    lines.push(
      `${(f.instance ? `${f.role}@${f.instance}` : f.role).padEnd(22)} ${verb} ${p.entries} entries (${p.processed_ids} processed ids, ${p.states} states, ${p.tombstones} tombstones), ${p.outbox_rows} sent outbox rows; kept ${p.kept.recent} recent, ${p.kept.timer} with a timer, ${p.kept.unsettled} unfinished; ${f.bytes_before} → ${f.bytes_after} bytes`,
    )
  }
  return lines.join('\n')
}
