import type { Message } from '../envelope.js'

export interface Breach {
  order_id: string
  rule: string
  detail: string
}

export interface VerifyReport {
  ok: boolean
  records: number
  /** Records whose message_id was already seen: redeliveries, replays, injected duplicates. */
  duplicate_records: number
  orders: number
  completed: number
  cancelled: number
  unfinished: number
  breaches: Breach[]
}

const FINALS = new Set(['order.completed', 'order.cancelled'])

/**
 * Checks the saga invariants over everything on order.events and the command topics. Pure.
 * An order.created that was dead-lettered (its message_id in `deadLettered`) never started a saga.
 */
export function verifyMessages(messages: Message[], deadLettered: ReadonlySet<string> = new Set()): VerifyReport {
  const seen = new Set<string>()
  const byOrder = new Map<string, Message[]>()
  let duplicates = 0
  for (const m of messages) {
    if (seen.has(m.message_id)) {
      duplicates++
      continue
    }
    seen.add(m.message_id)
    const list = byOrder.get(m.order_id) ?? []
    list.push(m)
    byOrder.set(m.order_id, list)
  }

  const breaches: Breach[] = []
  let completed = 0
  let cancelled = 0
  let unfinished = 0
  let orders = 0
  for (const [orderId, list] of byOrder) {
    if (!list.some((m) => m.type === 'order.created' && !deadLettered.has(m.message_id))) continue
    orders++
    const breach = (rule: string, detail: string): void => {
      breaches.push({ order_id: orderId, rule, detail })
    }
    const of = (type: string) => list.filter((m) => m.type === type)
    const ids = (type: string, field: string) => of(type).map((m) => m.payload[field]).filter((v): v is string => typeof v === 'string')

    const finals = list.filter((m) => FINALS.has(m.type))
    if (finals.length === 0) {
      unfinished++
      breach('finished', 'no final event (the saga never ended, or the system is not quiet yet)')
    } else if (finals.length > 1) {
      breach('exactly one final event', `${finals.length} final events: ${finals.map((f) => f.type).join(', ')}`)
    }
    const outcome = finals[0]?.type
    if (outcome === 'order.completed') completed++
    if (outcome === 'order.cancelled') cancelled++

    const reservations = new Set(ids('inventory.reserved', 'reservation_id'))
    const released = new Set(ids('inventory.reservation-cancelled', 'reservation_id'))
    const charges = new Set(ids('payment.succeeded', 'payment_id'))
    const refunds = new Set(ids('payment.refunded', 'payment_id'))
    const held = [...reservations].filter((r) => !released.has(r))
    const net = [...charges].filter((p) => !refunds.has(p))
    if (reservations.size > 1) breach('one reservation per saga', `${reservations.size} different reservations`)
    if (charges.size > 1) breach('one charge per saga', `${charges.size} different payments`)

    if (outcome === 'order.completed') {
      if (held.length !== 1) breach('completed ⇒ one reservation held', `${held.length} held`)
      if (net.length !== 1) breach('completed ⇒ one net charge', `${net.length} net charges`)
    }
    if (outcome === 'order.cancelled') {
      if (held.length !== 0) breach('cancelled ⇒ nothing held', `${held.length} reservation(s) still held`)
      if (net.length !== 0) breach('cancelled ⇒ no net charge', `${net.length} charge(s) not refunded`)
    }
    if (reservations.size === 0 && of('charge_payment').length > 0) breach('no charge after an inventory failure', 'charge_payment sent without a reservation')

    const applied = (type: string, field: string) => {
      const counts = new Map<string, number>()
      for (const m of of(type)) {
        const id = m.payload[field]
        if (typeof id === 'string' && m.payload.repeated !== true) counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      return [...counts].filter(([, n]) => n > 1)
    }
    for (const [id, n] of applied('inventory.reservation-cancelled', 'reservation_id')) breach('no compensation applied twice', `reservation ${id} cancelled ${n} times`)
    for (const [id, n] of applied('payment.refunded', 'payment_id')) breach('no compensation applied twice', `payment ${id} refunded ${n} times`)
  }
  return { ok: breaches.length === 0, records: messages.length, duplicate_records: duplicates, orders, completed, cancelled, unfinished, breaches }
}

export function renderVerifyReport(r: VerifyReport): string {
  const lines = [
    `${r.ok ? 'OK' : 'BREACHED'}: ${r.orders} orders — ${r.completed} completed, ${r.cancelled} cancelled, ${r.unfinished} unfinished`,
    `${r.records} records read, ${r.duplicate_records} of them repeats of a message_id already seen`,
  ]
  for (const b of r.breaches.slice(0, 50)) lines.push(`  ✗ ${b.order_id}  ${b.rule}: ${b.detail}`)
  if (r.breaches.length > 50) lines.push(`  … and ${r.breaches.length - 50} more`)
  return lines.join('\n')
}

/** The message_ids inside dead letters (the original bytes, when they parse as an envelope). */
export function deadLetteredIds(letters: { value_base64: string | null }[]): Set<string> {
  const ids = new Set<string>()
  for (const l of letters) {
    try {
      const id = (JSON.parse(Buffer.from(l.value_base64 ?? '', 'base64').toString('utf8')) as { message_id?: unknown }).message_id
      if (typeof id === 'string') ids.add(id)
    } catch {
      // unparseable: it never was a message of any saga
    }
  }
  return ids
}
