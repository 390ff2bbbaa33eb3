import type { ProducedRecord } from '../kafka/port.js'
import type { RuntimeObserver } from '../observe/observer.js'
import type { OutboxRow, QueuedRow } from './local-store.js'

/** A path out that has sent nothing for this long is not coming back by retrying. */
export const STUCK_AFTER_MS = 60_000

/** Sends rows as records, and tells the observer how it went (part: the partition committed; null: outputs). */
export async function sendRows(observer: RuntimeObserver | undefined, rows: (OutboxRow | QueuedRow)[], part: number | null, send: (records: ProducedRecord[]) => Promise<void>): Promise<void> {
  const records = rows.map(produced)
  const done = observer?.sending(records, part)
  try {
    await send(records)
  } catch (error) {
    done?.(error as Error)
    throw error
  }
  done?.()
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
