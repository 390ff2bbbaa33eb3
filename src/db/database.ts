import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'

export type Db = BetterSQLite3Database & { $client: Database.Database }

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url))

export function databasePath(dataDir: string, role: string): string {
  return path.join(dataDir, `${role}.db`)
}

export function openDatabase(file: string, { readonly = false, synchronous = 'FULL' }: { readonly?: boolean; synchronous?: 'FULL' | 'NORMAL' } = {}): Db {
  if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true })
  const sqlite = new Database(file, { readonly, fileMustExist: readonly })
  if (!readonly) {
    // WAL lets `saga show` read while the role writes. FULL syncs the WAL on every commit, so a
    // commit survives power loss too; records are committed a fetched batch at a time, which keeps
    // that to one sync per batch. NORMAL survives process crashes only.
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma(`synchronous = ${synchronous}`)
    migrate(sqlite)
  }
  sqlite.pragma('busy_timeout = 5000')
  return drizzle({ client: sqlite }) as Db
}

export function migrate(sqlite: Database.Database): void {
  sqlite.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)')
  const applied = new Set(sqlite.prepare('SELECT version FROM schema_migrations').pluck().all() as string[])
  const files = fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort()
  for (const file of files) {
    if (applied.has(file)) continue
    const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8')
    sqlite.transaction(() => {
      sqlite.exec(sql)
      sqlite.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(file, Date.now())
    })()
  }
}
