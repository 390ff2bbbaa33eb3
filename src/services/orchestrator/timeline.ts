import fs from 'node:fs'

import { and, asc, eq, or, sql } from 'drizzle-orm'

import { databasePath, openDatabase } from '../../db/database.js'
import { journal, state } from '../../db/schema.js'
import type { Envelope } from '../../envelope.js'
import { orderSaga } from './order-saga.js'
import { SAGA_SCOPE } from './role.js'
import { RETRY_DUE, STEP_TIMED_OUT, type SagaState } from './saga.js'

export interface TimelineEntry {
  at: string
  /** in: consumed by the orchestrator; out: sent by it; timer: its own retry or timeout firing. */
  direction: 'in' | 'out' | 'timer'
  topic: string
  type: string
  step: string
  attempt: number | null
  compensation: boolean
  message_id: string
  payload: Record<string, unknown>
}

export interface SagaReport {
  order_id: string
  saga_id: string
  status: SagaState['status']
  outcome: 'completed' | 'cancelled' | null
  reason: string | null
  step: string
  attempt: number
  started_at: string
  finished_at: string | null
  timeline: TimelineEntry[]
}

export class SagaNotFound extends Error {}

function stepOf(type: string, payload: Record<string, unknown>): string {
  if (type === RETRY_DUE || type === STEP_TIMED_OUT) return String(payload.step ?? '')
  for (const step of orderSaga.steps) {
    const c = step.compensation
    if ([step.command.type, step.succeeded, step.failed, c?.type, c?.confirmed].includes(type as never)) return step.name
  }
  return 'order'
}

function isCompensation(type: string): boolean {
  return orderSaga.steps.some((s) => s.compensation?.type === type || s.compensation?.confirmed === type)
}

/** Reads the orchestrator's database (WAL: safe while the orchestrator runs). */
export function loadSagaReport(dataDir: string, id: string): SagaReport {
  const file = databasePath(dataDir, 'orchestrator')
  if (!fs.existsSync(file)) throw new SagaNotFound(`no orchestrator database at ${file}; run this where the orchestrator runs, or point --data-dir / SAGA_DATA_DIR at it`)
  const db = openDatabase(file, { readonly: true })
  try {
    const entries = db
      .select()
      .from(journal)
      .where(or(eq(journal.orderId, id), eq(journal.sagaId, id)))
      .orderBy(asc(journal.at), sql`rowid`)
      .all()
    const orderId = entries[0]?.orderId ?? id
    const row = db.select().from(state).where(and(eq(state.scope, SAGA_SCOPE), eq(state.key, orderId))).get()
    if (!row) throw new SagaNotFound(`no saga with order or saga id ${id}`)
    const s = JSON.parse(row.value) as SagaState
    const timeline = entries.map((e): TimelineEntry => {
      const envelope = JSON.parse(e.envelope) as Envelope
      return {
        at: new Date(e.at).toISOString(),
        direction: e.direction,
        topic: e.topic,
        type: e.type,
        step: stepOf(e.type, envelope.payload),
        attempt: e.attempt,
        compensation: isCompensation(e.type),
        message_id: e.messageId,
        payload: envelope.payload,
      }
    })
    const finished = s.status === 'completed' || s.status === 'cancelled'
    return {
      order_id: s.order_id,
      saga_id: s.saga_id,
      status: s.status,
      outcome: finished ? (s.status as 'completed' | 'cancelled') : null,
      reason: s.reason ?? null,
      step: s.step,
      attempt: s.attempt,
      started_at: new Date(s.started_at).toISOString(),
      finished_at: s.finished_at ? new Date(s.finished_at).toISOString() : null,
      timeline,
    }
  } finally {
    db.$client.close()
  }
}

export function renderSagaReport(r: SagaReport): string {
  const lines = [
    `order  ${r.order_id}`,
    `saga   ${r.saga_id}`,
    `status ${r.status.toUpperCase()}${r.reason ? ` — ${r.reason}` : ''}${r.outcome ? '' : ` (at ${r.step}, attempt ${r.attempt})`}`,
    '',
  ]
  const arrows = { in: '←', out: '→', timer: '⏱' } as const
  for (const e of r.timeline) {
    const detail = [
      e.payload.reason ? `reason: ${String(e.payload.reason)}` : '',
      e.payload.retryable === false ? 'not retryable' : '',
      e.payload.reservation_id ? `reservation ${String(e.payload.reservation_id)}` : '',
      e.payload.payment_id ? `payment ${String(e.payload.payment_id)}` : '',
    ]
      .filter(Boolean)
      .join(', ')
    lines.push(
      `${e.at.slice(11, 23)}  ${arrows[e.direction]} ${e.type.padEnd(32)} ${e.step.padEnd(18)} ${e.attempt ? `attempt ${e.attempt}` : '         '}${e.compensation ? '  ↩ compensation' : ''}${detail ? `  ${detail}` : ''}`,
    )
  }
  if (r.outcome) lines.push('', `outcome: ${r.outcome}${r.finished_at ? ` at ${r.finished_at}` : ''}`)
  return lines.join('\n')
}
