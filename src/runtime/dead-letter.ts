import type { ConsumedRecord } from '../kafka/port.js'
import { derivedIds } from './ids.js'
import type { LocalStore } from './local-store.js'
import type { Outcome, RoleHandler } from './role.js'

export interface DeadLetterContext {
  store: LocalStore
  role: RoleHandler
  /** The dead-letter topic. */
  dlq: string
  now: number
}

/**
 * Writes the record to the dead-letter topic with the reason, in a unit of its partition, under
 * `id`: handling the same position again finds it seen and writes nothing.
 */
export function deadLetter({ store, role, dlq, now }: DeadLetterContext, record: ConsumedRecord, reason: string, id: string): Outcome {
  const letter = {
    // Derived from the role and the record's position: handling the record again gives the same letter id.
    dead_letter_id: derivedIds(`${role.name}|${id}`)(),
    reason,
    role: role.name,
    source: { topic: record.topic, partition: record.partition, offset: record.offset.toString() },
    key: record.key?.toString('utf8') ?? null,
    headers: record.headers,
    value_base64: record.value?.toString('base64') ?? null,
    dead_lettered_at: new Date(now).toISOString(),
  }
  return store.within(record.partition, () =>
    store.transaction((): Outcome => {
      if (store.seen(id)) return 'duplicate'
      store.markSeen(id, id, now)
      store.enqueueRaw({
        topic: dlq,
        key: letter.key ?? `${record.topic}:${record.partition}`,
        value: JSON.stringify(letter),
        headers: JSON.stringify({ 'x-dlq-reason': reason.slice(0, 500), 'x-dlq-role': role.name }),
        at: now,
        dest: null,
      })
      if (role.global) store.setPosition(record.topic, record.partition, record.offset + 1n)
      store.writeChangelog(now)
      return 'dead-lettered'
    }),
  )
}
