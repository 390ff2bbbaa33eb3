import { randomUUID } from 'node:crypto'

import { command as commandEnvelope, parseEnvelope, type Message, type Payload } from '../envelope.js'
import type { MessageBus } from '../kafka/port.js'
import type { SagaStep } from '../saga/define.js'
import type { TopicNames } from '../topics.js'
import { CONFORM_ORDER, type Driver, type Ids, type Reply } from './conform.js'

/** The participant on its topics: commands to its command topic, replies from order.events, refusals on the dlq. */
export function kafkaDriver(bus: MessageBus, topics: TopicNames, step: SagaStep, o: { waitMs: number; settleMs: number; role: string }): Driver {
  const commands = topics[step.topic.key]
  const send = async (type: string, ids: Ids, payload: Payload, messageId: string, abortAfterMs?: number, mayBeSilent = false): Promise<Reply[]> => {
    const envelope = commandEnvelope(type, { ...ids, payload }, Date.now(), messageId)
    const seen: { message: Message | undefined; problem?: string; raw: string }[] = []
    const from = await bus.endOffsets(topics.orderEvents)
    const sub = await bus.tail({
      topic: topics.orderEvents,
      fromOffsets: from,
      handler: (record) => {
        const raw = record.value?.toString('utf8') ?? ''
        const parsed = parseEnvelope(record.value)
        if (!parsed.ok) {
          if (raw.includes(messageId)) seen.push({ message: undefined, problem: `a reply that is not an envelope: ${parsed.reason}`, raw })
          return
        }
        if (parsed.message.causation_id === messageId) seen.push({ message: parsed.message, raw })
      },
    })
    try {
      await bus.publish([{ topic: commands, key: ids.order_id, value: JSON.stringify(envelope) }])
      // A timeout: the sender stops waiting at once; the participant still answers, and that answer is not counted.
      if (abortAfterMs !== undefined) return []
      const deadline = Date.now() + (mayBeSilent ? 0 : o.waitMs)
      while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      // Anything else it says about this command (a second reply to a duplicate) comes soon after.
      await new Promise((resolve) => setTimeout(resolve, o.settleMs))
    } finally {
      await sub.close()
    }
    return seen.map((s) => toReply(s, ids, messageId))
  }
  const toReply = (s: { message: Message | undefined; problem?: string; raw: string }, ids: Ids, messageId: string): Reply => {
    if (!s.message) return { outcome: 'none', raw: s.raw, malformed: s.problem ?? 'not an envelope' }
    const m = s.message
    const problems = [
      !m.event_type ? 'no event_type' : '',
      m.order_id !== ids.order_id ? `order_id ${m.order_id} is not the command's` : '',
      m.saga_id !== ids.saga_id ? `saga_id ${m.saga_id} is not the command's` : '',
      m.causation_id !== messageId ? 'causation_id is not the command' : '',
      ![step.succeeded, step.failed, step.compensation.confirmed].includes(m.type) ? `type ${m.type} is not one of the step's replies` : '',
    ].filter(Boolean)
    const base = { raw: s.raw.slice(0, 200), ...(problems.length > 0 ? { malformed: `reply ${m.message_id}: ${problems.join(', ')}` } : {}), ...(m.payload.repeated === true ? { repeated: true } : {}) }
    const id = m.payload[step.effectId]
    if (m.type === step.succeeded) return { outcome: 'done', effectId: typeof id === 'string' ? id : null, ...base }
    if (m.type === step.compensation.confirmed) return { outcome: 'confirmed', effectId: typeof id === 'string' ? id : null, ...base }
    if (m.type === step.failed) return { outcome: m.payload.retryable === false ? 'declined' : 'failed', ...base }
    return { outcome: 'none', ...base }
  }
  return {
    via: 'kafka',
    target: commands,
    sends: [step.command.type, step.compensation.type].map((type) => `${type} → topic ${commands}, replies read from ${topics.orderEvents}`),
    async act(ids, attempt, x = {}) {
      const messageId = x.messageId ?? randomUUID()
      return send(step.command.type, ids, { ...CONFORM_ORDER, attempt }, messageId, x.abortAfterMs, x.mayBeSilent)
    },
    async undo(ids, attempt, effect) {
      return send(step.compensation.type, ids, { ...effect.payload, [step.effectId]: effect.id, attempt }, randomUUID())
    },
    async malformed() {
      const key = `conform-${randomUUID()}`
      const from = await bus.endOffsets(topics.dlq)
      let letter: { reason?: string; role?: string } | undefined
      const sub = await bus.tail({
        topic: topics.dlq,
        fromOffsets: from,
        handler: (record) => {
          const value = record.value?.toString('utf8') ?? ''
          if (!value.includes(key)) return
          try {
            letter = JSON.parse(value) as { reason?: string; role?: string }
          } catch {
            letter = { reason: value.slice(0, 80) }
          }
        },
      })
      try {
        await bus.publish([{ topic: commands, key, value: `{"order_id": "${key}", not json` }])
        const deadline = Date.now() + o.waitMs
        while (!letter && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      } finally {
        await sub.close()
      }
      return letter ? { ok: true, seen: `dead-lettered by ${letter.role ?? '?'}: ${letter.reason ?? ''}` } : { ok: false, seen: `no dead letter for it on ${topics.dlq} within ${o.waitMs} ms` }
    },
    async close() {},
  }
}
