import type { ConsumedRecord, ProducedRecord } from '../kafka/port.js'
import type { Outcome } from '../runtime/role.js'

/** W3C trace context headers: the only headers a role copies from what it handles to what it writes. */
export const TRACE_HEADERS = ['traceparent', 'tracestate'] as const
export type TraceHeaders = Partial<Record<(typeof TRACE_HEADERS)[number], string>>

/** The trace context of a message, or undefined when it carries none. */
export function traceHeadersOf(headers: Record<string, string | string[] | undefined> | undefined): TraceHeaders | undefined {
  const parent = headers?.traceparent
  if (typeof parent !== 'string' || parent === '') return undefined
  const state = headers?.tracestate
  return typeof state === 'string' && state !== '' ? { traceparent: parent, tracestate: state } : { traceparent: parent }
}

/** What the runtime reports about one message it handles (a consumed record, or a due timer). */
export interface Handling {
  /** Trace context for every message this handling writes; absent: none. */
  headers?: TraceHeaders
  /** `type` is the message's type; absent when the record could not be parsed. */
  end(outcome: Outcome, type?: string): void
}

export interface HandlingInput {
  record?: ConsumedRecord
  /** The trace context the message arrived with (a record's headers, or the one stored with a timer). */
  trace?: TraceHeaders
}

/**
 * The runtime's only view of metrics and tracing. Every call is synchronous and cheap; the
 * observer may rewrite the trace headers of records about to be sent (to name its send span).
 */
export interface RuntimeObserver {
  handling(input: HandlingInput): Handling
  /** Called just before a relay sends `records`; the returned function once the send settled. */
  sending(records: ProducedRecord[], partition: number | null): (error?: Error) => void
}
