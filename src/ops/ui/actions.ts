import { parseEnvelope, type Message } from '../../envelope.js'
import type { MessageBus, ProducedRecord } from '../../kafka/port.js'
import type { Saga } from '../../saga/define.js'
import type { TopicNames } from '../../topics.js'
import { SagaRequestNotDone } from '../../services/orchestrator/ask.js'
import { requestSagaCancel } from '../../services/orchestrator/cancel.js'
import { requestSagaPause, requestSagaResume } from '../../services/orchestrator/pause.js'
import { requestRetry, RetryNotDone } from '../../services/orchestrator/retry.js'
import { SagaNotFound } from '../../services/orchestrator/timeline.js'
import { listDeadLetters, replayDeadLetters, type DeadLetter } from '../dead-letters.js'

export type ActionName = 'cancel' | 'pause' | 'resume' | 'retry' | 'replay'

/** A record an action published, as it went to the broker. */
export interface WrittenRecord {
  topic: string
  key: string
  headers?: Record<string, string>
  /** The value, parsed when it is JSON (a request's message_id, type and payload), else its text. */
  value: unknown
}

/** What the page shows of an action: the records it wrote, and the orchestrator's answer to them. */
export interface ActionRecord {
  action: ActionName
  wrote: WrittenRecord[]
  /** The answer on the control topic caused by what it wrote; null when none came or none is asked for. */
  answer: Message | null
  /** What the CLI command prints with --json for the same action. */
  result: unknown
}

/** An action refused or not answered; `wrote` is what went out before it was (a request left on order.events). */
export class ActionFailed extends Error {
  constructor(
    readonly statusCode: 400 | 404 | 409 | 504,
    message: string,
    readonly wrote: WrittenRecord[] = [],
  ) {
    super(message)
  }
}

export interface UiActions {
  cancel(id: string, reason: string): Promise<ActionRecord>
  pause(id: string, reason: string): Promise<ActionRecord>
  resume(id: string, reason: string): Promise<ActionRecord>
  retry(id: string): Promise<ActionRecord>
  replay(deadLetterId: string): Promise<ActionRecord>
  deadLetters(): Promise<DeadLetter[]>
}

export const REQUESTED_BY = 'sagactl ui'
// As long as the CLI commands wait by default (--timeout 30).
const ANSWER_TIMEOUT_MS = 30_000

function written(record: ProducedRecord): WrittenRecord {
  const text = record.value === null ? '' : record.value.toString()
  let value: unknown = text
  try {
    value = JSON.parse(text)
  } catch {
    // A dead letter's original bytes need not be JSON: shown as they are.
  }
  return { topic: record.topic, key: record.key, ...(record.headers ? { headers: record.headers } : {}), value }
}

/**
 * The bus the CLI's own functions are handed, so the page can show exactly what they wrote and
 * what the control topic answered, without a second code path that builds the request.
 */
function recording(bus: MessageBus, control: string): { bus: MessageBus; wrote: WrittenRecord[]; answer(): Message | null } {
  const wrote: WrittenRecord[] = []
  const heard: Message[] = []
  const recorded = new Proxy(bus, {
    get(target, property, receiver) {
      if (property === 'publish') {
        return async (records: ProducedRecord[]) => {
          await target.publish(records)
          wrote.push(...records.map(written))
        }
      }
      if (property === 'tail') {
        return (options: Parameters<MessageBus['tail']>[0]) =>
          target.tail({
            ...options,
            handler: (record) => {
              const parsed = options.topic === control ? parseEnvelope(record.value) : undefined
              if (parsed?.ok) heard.push(parsed.message)
              options.handler(record)
            },
          })
      }
      const value: unknown = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
  const ids = () => new Set(wrote.map((w) => (w.value as { message_id?: unknown } | null)?.message_id).filter((id) => typeof id === 'string'))
  return { bus: recorded, wrote, answer: () => heard.find((m) => m.causation_id !== undefined && ids().has(m.causation_id)) ?? null }
}

/**
 * The page's actions, each the function its CLI command calls (`saga cancel`, `saga pause`,
 * `saga resume`, `saga retry`, `dlq replay <id>`), with the same waits; their refusals become the
 * 4xx the routes answer.
 */
export function uiActions(bus: MessageBus, topics: TopicNames, changelog: string, saga: Saga, answerTimeoutMs = ANSWER_TIMEOUT_MS): UiActions {
  const asked = { saga, requestedBy: REQUESTED_BY, wait: true, timeoutMs: answerTimeoutMs }
  async function asking(action: ActionName, run: (bus: MessageBus) => Promise<unknown>): Promise<ActionRecord> {
    const r = recording(bus, topics.control)
    try {
      const result = await run(r.bus)
      return { action, wrote: r.wrote, answer: r.answer(), result }
    } catch (error) {
      if (error instanceof SagaNotFound) throw new ActionFailed(404, error.message)
      if (!(error instanceof SagaRequestNotDone || error instanceof RetryNotDone)) throw error
      // Refused before anything went out (the saga ended), refused by the orchestrator, or not answered.
      const status = r.wrote.length === 0 || r.answer() ? 409 : 504
      throw new ActionFailed(status, (error as Error).message, r.wrote)
    }
  }
  return {
    cancel: (id, reason) => asking('cancel', (b) => requestSagaCancel(b, topics, changelog, id, { ...asked, reason })),
    pause: (id, reason) => asking('pause', (b) => requestSagaPause(b, topics, changelog, id, { ...asked, reason })),
    resume: (id, reason) => asking('resume', (b) => requestSagaResume(b, topics, changelog, id, { ...asked, reason })),
    retry: (id) => asking('retry', (b) => requestRetry(b, topics, changelog, id, asked)),
    async replay(deadLetterId) {
      const r = recording(bus, topics.control)
      const chosen = (await listDeadLetters(bus, topics)).filter((l) => l.dead_letter_id === deadLetterId)
      if (chosen.length === 0) throw new ActionFailed(404, `no dead letter ${deadLetterId}`)
      const sent = await replayDeadLetters(r.bus, topics, chosen)
      return { action: 'replay', wrote: r.wrote, answer: null, result: { replayed: sent.map((l) => l.dead_letter_id) } }
    },
    deadLetters: () => listDeadLetters(bus, topics),
  }
}
