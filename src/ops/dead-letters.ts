import { randomUUID } from 'node:crypto'

import { event, parseEnvelope } from '../envelope.js'
import type { MessageBus } from '../kafka/port.js'
import type { TopicNames } from '../topics.js'

export interface DeadLetter {
  dead_letter_id: string
  reason: string
  role: string
  source: { topic: string; partition: number; offset: string }
  key: string | null
  headers: Record<string, string>
  value_base64: string | null
  dead_lettered_at: string
  /** When it was sent back to its source topic, if it was. */
  replayed_at: string | null
}

export async function listDeadLetters(bus: MessageBus, topics: TopicNames): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = []
  const seen = new Set<string>()
  await bus.read({
    topic: topics.dlq,
    handler: (record) => {
      try {
        const letter = JSON.parse(record.value?.toString() ?? '') as DeadLetter
        // A record handled again (after a crash, or by a zombie) is dead-lettered again with the same id: one letter.
        if (letter.dead_letter_id && !seen.has(letter.dead_letter_id)) {
          seen.add(letter.dead_letter_id)
          letters.push({ ...letter, replayed_at: null })
        }
      } catch {
        // Something that is not ours on the dead-letter topic: nothing to list.
      }
    },
  })
  const replayed = new Map<string, string>()
  await bus.read({
    topic: topics.control,
    handler: (record) => {
      const parsed = parseEnvelope(record.value)
      if (parsed.ok && parsed.message.type === 'dlq.replayed') replayed.set(String(parsed.message.payload.dead_letter_id), parsed.message.occurred_at ?? '')
    },
  })
  return letters.map((l) => ({ ...l, replayed_at: replayed.get(l.dead_letter_id) ?? null }))
}

/**
 * Sends dead letters back to where they came from, original bytes, key and headers. A record
 * dead-lettered by several roles (order.events has three consumers) is sent back once.
 */
export async function replayDeadLetters(bus: MessageBus, topics: TopicNames, letters: DeadLetter[]): Promise<DeadLetter[]> {
  const bySource = new Map<string, DeadLetter[]>()
  for (const l of letters) {
    const k = `${l.source.topic}:${l.source.partition}:${l.source.offset}`
    bySource.set(k, [...(bySource.get(k) ?? []), l])
  }
  const sent: DeadLetter[] = []
  for (const group of bySource.values()) {
    const l = group[0]!
    await bus.publish([
      {
        topic: l.source.topic,
        key: l.key ?? '',
        value: Buffer.from(l.value_base64 ?? '', 'base64'),
        headers: { ...l.headers, 'x-dlq-replayed-from': l.dead_letter_id },
      },
    ])
    const now = Date.now()
    await bus.publish(
      group.map((g) => {
        const marker = event('dlq.replayed', { order_id: g.key ?? 'dlq', saga_id: 'dlq', payload: { dead_letter_id: g.dead_letter_id, source: g.source } }, now, randomUUID())
        return { topic: topics.control, key: marker.order_id, value: JSON.stringify(marker) }
      }),
    )
    sent.push(...group)
  }
  return sent
}
