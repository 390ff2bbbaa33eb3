import { EVENT_TYPES, type Message } from '../envelope.js'
import type { Decision, Notice, RoleHandler } from '../runtime/role.js'

const known = new Set<string>(EVENT_TYPES)

function short(id: string): string {
  return id.slice(0, 8)
}

/** One readable line per event; compensations and final outcomes stand out. */
export function describe(message: Message): Notice {
  const p = message.payload
  const attempt = typeof p.attempt === 'number' ? ` (attempt ${p.attempt})` : ''
  const fields = { order_id: message.order_id, saga_id: message.saga_id, event: message.type, ...(typeof p.attempt === 'number' ? { attempt: p.attempt } : {}) }
  const line = (level: Notice['level'], step: string, outcome: string): Notice => ({
    level,
    msg: `order ${short(message.order_id)} │ ${step.padEnd(9)} │ ${outcome}`,
    fields: { ...fields, step, outcome },
  })
  switch (message.type) {
    case 'order.created': {
      const items = Array.isArray(p.items) ? p.items.length : 0
      return line('info', 'order', `created: ${items} item(s), amount ${String(p.amount)}`)
    }
    case 'inventory.reserved':
      return line('info', 'inventory', `reserved ${String(p.reservation_id)}${attempt}${p.repeated ? ' [repeated reply]' : ''}`)
    case 'inventory.reserve-failed':
      return line('warn', 'inventory', `reserve FAILED: ${String(p.reason)}${attempt}, ${p.retryable === false ? 'not retryable' : 'will be retried if attempts remain'}`)
    case 'payment.succeeded':
      return line('info', 'payment', `charged ${String(p.amount)} as ${String(p.payment_id)}${attempt}${p.repeated ? ' [repeated reply]' : ''}`)
    case 'payment.failed':
      return line('warn', 'payment', `charge FAILED: ${String(p.reason)}${attempt}, ${p.retryable === false ? 'not retryable' : 'will be retried if attempts remain'}`)
    case 'inventory.reservation-cancelled':
      return line('warn', 'inventory', `↩ COMPENSATION: reservation ${String(p.reservation_id)} cancelled`)
    case 'payment.refunded':
      return line('warn', 'payment', `↩ COMPENSATION: payment ${String(p.payment_id)} refunded`)
    case 'order.completed':
      return line('info', 'order', '■ COMPLETED')
    case 'order.cancelled':
      return line('warn', 'order', `■ CANCELLED: ${String(p.reason)}`)
    case 'saga.stuck':
      return line('error', 'order', `⚠ STUCK: ${String(p.reason)}; resume with \`sagactl saga retry ${message.order_id}\``)
    case 'saga.retry-requested':
      return line('warn', 'order', `retry requested for ${String(p.step)}`)
    default:
      return line('warn', 'order', message.type)
  }
}

export const notifierRole: RoleHandler = {
  name: 'notifier',
  consumes: ['orderEvents'],
  handle(message: Message): Decision {
    if (!known.has(message.type)) return { reject: `unknown event type "${message.type}"` }
    return { notices: [describe(message)] }
  },
}
