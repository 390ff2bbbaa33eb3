import type { Message } from '../envelope.js'
import type { Decision, Notice, RoleHandler } from '../runtime/role.js'
import { CANCEL_REQUESTED, DEADLINE_PASSED, PAUSE_REQUESTED, RESUME_REQUESTED, RETRY_DUE, RETRY_REQUESTED, SAGA_STUCK, STEP_TIMED_OUT, waitsOf, type Saga } from '../saga/define.js'
import { eventTypes } from '../saga/derive.js'

function short(id: string): string {
  return id.slice(0, 8)
}

/** One readable line per event; compensations and final outcomes stand out. Each step's words come from its module. */
export function describe(message: Message, saga: Saga): Notice {
  const p = message.payload
  const attempt = typeof p.attempt === 'number' ? ` (attempt ${p.attempt})` : ''
  const fields = { order_id: message.order_id, saga_id: message.saga_id, event: message.type, ...(typeof p.attempt === 'number' ? { attempt: p.attempt } : {}) }
  const line = (level: Notice['level'], step: string, outcome: string): Notice => ({
    level,
    msg: `order ${short(message.order_id)} │ ${step.padEnd(9)} │ ${outcome}`,
    fields: { ...fields, step, outcome },
  })
  switch (message.type) {
    case saga.started: {
      const items = Array.isArray(p.items) ? p.items.length : 0
      return line('info', 'order', `created: ${items} item(s), amount ${String(p.amount)}`)
    }
    case saga.completed:
      return line('info', 'order', '■ COMPLETED')
    case saga.cancelled:
      return line('warn', 'order', `■ CANCELLED: ${String(p.reason)}`)
    case SAGA_STUCK:
      return line('error', 'order', `⚠ STUCK: ${String(p.reason)}; resume with \`sagactl saga retry ${message.order_id}\``)
    case RETRY_REQUESTED:
      return line('warn', 'order', `retry requested for ${String(p.step)}`)
    case CANCEL_REQUESTED:
      return line('warn', 'order', `✋ cancel requested by ${String(p.requested_by ?? 'unknown')}: ${String(p.reason ?? 'no reason given')}`)
    case PAUSE_REQUESTED:
      return line('warn', 'order', `⏸ pause requested by ${String(p.requested_by ?? 'unknown')}: ${String(p.reason ?? 'no reason given')}`)
    case RESUME_REQUESTED:
      return line('info', 'order', `▶ resume requested by ${String(p.requested_by ?? 'unknown')}`)
    case DEADLINE_PASSED:
      return line('warn', 'order', `⏱ deadline passed (${typeof p.deadline_at === 'number' ? new Date(p.deadline_at).toISOString() : '?'})`)
    case RETRY_DUE:
      return line('info', 'order', `⏱ retry of ${String(p.step)} due${attempt}`)
    case STEP_TIMED_OUT:
      return line('warn', 'order', `⏱ ${String(p.step)} did not answer in time${attempt}`)
  }
  const wait = waitsOf(saga).find((w) => w.event === message.type)
  if (wait) return line('info', 'order', `✉ ${message.type} came (awaited by ${wait.name})`)
  for (const step of saga.steps) {
    const words = step.notifier
    if (message.type === step.succeeded) return line('info', step.role, `${words.succeeded(p)}${attempt}${p.repeated ? ' [repeated reply]' : ''}`)
    if (message.type === step.failed) return line('warn', step.role, `${words.failed} FAILED: ${String(p.reason)}${attempt}, ${p.retryable === false ? 'not retryable' : 'will be retried if attempts remain'}`)
    if (message.type === step.compensation.confirmed) return line('warn', step.role, `↩ COMPENSATION: ${words.confirmed(p)}`)
  }
  return line('warn', 'order', message.type)
}

export function notifierFor(saga: Saga): RoleHandler {
  const known = new Set<string>(eventTypes(saga))
  return {
    name: 'notifier',
    consumes: ['orderEvents'],
    handle(message: Message): Decision {
      if (!known.has(message.type)) return { reject: `unknown event type "${message.type}"` }
      return { notices: [describe(message, saga)] }
    },
  }
}

