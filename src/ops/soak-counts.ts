// What the soak counts, kept apart from the processes and sockets it counts, so the counting can
// be tested on its own: a kill counts once its exit was seen, and an order placed on Kafka
// instead of the api says why.

/** Why an order went straight to Kafka instead of through the api. `http_<status>` for an answer other than 202. */
export type FallbackCause = 'api_down' | 'connection_lost' | 'timeout' | `http_${number}` | 'error'

/** What one POST /orders came to: the status it answered, or what fetch (or reading the body) threw. */
export type ApiAttempt = { status: number } | { error: unknown }

const LOST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const e = error as { code?: unknown; errors?: unknown }
  if (typeof e.code === 'string') return e.code
  // Node tries every address of a name and reports them together (AggregateError).
  if (Array.isArray(e.errors)) return e.errors.map(codeOf).find((c) => c !== undefined)
  return undefined
}

/** The cause of a fallback, from what fetch reports; `undefined` when the api placed the order (202). */
export function fallbackCause(attempt: ApiAttempt): FallbackCause | undefined {
  if ('status' in attempt) return attempt.status === 202 ? undefined : `http_${attempt.status}`
  const error = attempt.error as { name?: unknown; cause?: unknown } | null
  if (error?.name === 'TimeoutError' || (error?.cause as { name?: unknown } | undefined)?.name === 'TimeoutError') return 'timeout'
  const code = codeOf(error?.cause) ?? codeOf(error)
  if (code === 'ECONNREFUSED') return 'api_down'
  if (code !== undefined && LOST.has(code)) return 'connection_lost'
  return 'error'
}

export interface SoakCounts {
  /** SIGKILLs whose exit was observed, by unit. */
  kills: Record<string, number>
  /** Kills not sent because the unit was already down (killed earlier, or crashed and not yet restarted). */
  kills_skipped: Record<string, number>
  /** Orders placed straight on Kafka, by why the api did not take them; they add up to via_kafka. */
  via_kafka_by_cause: Partial<Record<FallbackCause, number>>
}

export function emptyCounts(): SoakCounts {
  return { kills: {}, kills_skipped: {}, via_kafka_by_cause: {} }
}

const bump = <K extends string>(record: Partial<Record<K, number>>, key: K): void => {
  record[key] = (record[key] ?? 0) + 1
}

/** `died`: the process was running, was signalled, and its exit was seen. */
export function countKill(counts: SoakCounts, unit: string, died: boolean): void {
  bump(died ? counts.kills : counts.kills_skipped, unit)
}

export function countFallback(counts: SoakCounts, cause: FallbackCause): void {
  bump(counts.via_kafka_by_cause, cause)
}

export function total(record: Partial<Record<string, number>>): number {
  return Object.values(record).reduce<number>((a, b) => a + (b ?? 0), 0)
}
