import type { Message } from '../envelope.js'
import { RETRY_REQUESTED, SAGA_STUCK, previousSteps, type Saga } from '../saga/define.js'
import { breachKinds, versionByHash, versionsOf } from '../saga/derive.js'
import { orderSaga } from '../order-saga/saga.js'

/**
 * What can be wrong with one order, as a closed set so scripts and tests can match on it; `rule`
 * and `detail` in a breach are for people. The order saga's set; another saga's adds its steps'.
 */
export const BREACH_KINDS: readonly string[] = breachKinds(orderSaga)
/** One of breachKinds(saga): the steps name their own. */
export type BreachKind = string

export interface Breach {
  order_id: string
  kind: BreachKind
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
  /** Sagas without a final event, the stuck ones included. */
  unfinished: number
  /** Unfinished sagas whose compensation ran out of attempts and waits for `sagactl saga retry`. */
  stuck: number
  /** No order was found: a wrong broker or topic prefix looks exactly like this. Not ok unless allowed. */
  empty: boolean
  breaches: Breach[]
}

export interface VerifyOptions {
  /** Zero orders is a pass, not a failure (a fresh system, a test that expects nothing). */
  allowEmpty?: boolean
  /** The saga whose invariants are checked: the order saga unless told. */
  saga?: Saga
}

/**
 * What a message says, without when it was said: two copies of one message may carry different
 * `occurred_at` (the api and soak's fallback both publish the keyed order.created), never a
 * different type, order, saga or payload.
 */
function bodyOf(m: Message): string {
  return canonical({ type: m.type, order_id: m.order_id, saga_id: m.saga_id, payload: m.payload })
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/**
 * Checks the saga invariants over everything on order.events and the command topics; each step's
 * checks are the same, in the words of its module. Pure: the caller reads the topics. An
 * order.created that was dead-lettered (its message_id in `deadLettered`) never started a saga. One fault gives one breach: the checks do not overlap (a
 * second charge on a completed order is a double charge, not also a wrong net charge).
 */
export function verifyMessages(messages: Message[], deadLettered: ReadonlySet<string> = new Set(), options: VerifyOptions = {}): VerifyReport {
  const saga = options.saga ?? orderSaga
  const finalTypes = new Set([saga.completed, saga.cancelled])
  // What moves a stuck saga on: an operator's retry, or the confirmation of a compensation it was waiting for.
  const unsticks = new Set([RETRY_REQUESTED, ...saga.steps.map((s) => s.compensation.confirmed)])
  const first = new Map<string, { message: Message; conflicted: boolean }>()
  const byOrder = new Map<string, Message[]>()
  const breaches: Breach[] = []
  let duplicates = 0
  for (const m of messages) {
    const seen = first.get(m.message_id)
    if (seen) {
      duplicates++
      // The first copy is the one every consumer acted on; a different later copy was skipped by all.
      if (!seen.conflicted && bodyOf(m) !== bodyOf(seen.message)) {
        seen.conflicted = true
        breaches.push({
          order_id: seen.message.order_id,
          kind: 'message_id_conflict',
          rule: 'one message_id, one message',
          detail: `message_id ${m.message_id} carries two different messages: ${seen.message.type} and ${m.type === seen.message.type ? 'another ' : ''}${m.type}`,
        })
      }
      continue
    }
    first.set(m.message_id, { message: m, conflicted: false })
    const list = byOrder.get(m.order_id) ?? []
    list.push(m)
    byOrder.set(m.order_id, list)
  }

  let completed = 0
  let cancelled = 0
  let unfinished = 0
  let stuck = 0
  let orders = 0
  for (const [orderId, list] of byOrder) {
    if (!list.some((m) => m.type === saga.started && !deadLettered.has(m.message_id))) continue
    orders++
    const breach = (kind: BreachKind, rule: string, detail: string): void => {
      breaches.push({ order_id: orderId, kind, rule, detail })
    }
    const of = (type: string) => list.filter((m) => m.type === type)
    const ids = (type: string, field: string) => of(type).map((m) => m.payload[field]).filter((v): v is string => typeof v === 'string')

    const finals = list.filter((m) => finalTypes.has(m.type))
    let lastStuck = -1
    for (let i = 0; i < list.length; i++) if (list[i]!.type === SAGA_STUCK) lastStuck = i
    if (finals.length === 0 && lastStuck >= 0 && !list.slice(lastStuck + 1).some((m) => unsticks.has(m.type))) {
      // Not a silent hang: the orchestrator said why it stopped, and a person can resume it.
      unfinished++
      stuck++
      breach('stuck', 'finished', `${String(list[lastStuck]!.payload.reason ?? 'stuck')}; resume it with \`sagactl saga retry ${orderId}\``)
    } else if (finals.length === 0) {
      unfinished++
      breach('unfinished', 'finished', 'no final event (the saga never ended, or the system is not quiet yet)')
    } else if (finals.length > 1) {
      breach('multiple_final_events', 'exactly one final event', `${finals.length} final events: ${finals.map((f) => f.type).join(', ')}`)
    }
    const outcome = finals[0]?.type
    if (outcome === saga.completed) completed++
    if (outcome === saga.cancelled) cancelled++

    // A participant answers a repeated command with the effect id it already made, so two ids are two effects.
    // Each saga is held to the version it started under: its order.created's stamp, else the newest.
    const created = list.find((m) => m.type === saga.started && !deadLettered.has(m.message_id))
    const version = versionByHash(saga, created?.saga_definition) ?? versionsOf(saga).at(-1)!
    const effects = version.steps.map((step) => {
      const made = new Set(ids(step.succeeded, step.effectId))
      const undone = new Set(ids(step.compensation.confirmed, step.effectId))
      return { step, made, standing: [...made].filter((id) => !undone.has(id)) }
    })
    for (const { step, made } of effects) {
      if (made.size > 1) breach(step.verify.double.kind, step.verify.double.rule, `${made.size} ${step.verify.double.detail}`)
    }
    if (outcome === saga.completed) {
      // More than one standing is already a double effect above.
      for (const { step, made, standing } of effects) {
        const c = step.verify.completedWithout
        if (standing.length === 0) breach(c.kind, c.rule, made.size === 0 ? c.never : c.undone)
      }
    }
    if (outcome === saga.cancelled) {
      for (const { step, standing } of effects) {
        if (standing.length !== 0) breach('cancelled_with_effect_standing', step.verify.cancelledStanding.rule, `${standing.length} ${step.verify.cancelledStanding.detail}`)
      }
    }
    // The step before is the stage before: every branch of a parallel stage must have acted first.
    for (const { step, made } of effects) {
      const w = step.verify.withoutPrevious
      const before = previousSteps(version, step).map((p) => effects.find((e) => e.step.name === p.name)!)
      if (!w || before.length === 0 || before.every((p) => p.made.size !== 0)) continue
      if (of(step.command.type).length > 0 || made.size > 0) breach(w.kind, w.rule, made.size > 0 ? w.taken : w.sent)
    }

    const applied = (type: string, field: string) => {
      const counts = new Map<string, number>()
      for (const m of of(type)) {
        const id = m.payload[field]
        if (typeof id === 'string' && m.payload.repeated !== true) counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      return [...counts].filter(([, n]) => n > 1)
    }
    const twice = version.steps.flatMap((step) => applied(step.compensation.confirmed, step.effectId).map(([id, n]) => step.verify.undoneTwice.replace('{id}', id).replace('{n}', String(n))))
    if (twice.length > 0) breach('compensation_applied_twice', 'no compensation applied twice', twice.join('; '))
  }
  const empty = orders === 0
  return {
    ok: breaches.length === 0 && (!empty || options.allowEmpty === true),
    records: messages.length,
    duplicate_records: duplicates,
    orders,
    completed,
    cancelled,
    unfinished,
    stuck,
    empty,
    breaches,
  }
}

export function renderVerifyReport(r: VerifyReport): string {
  const verdict = r.breaches.length > 0 ? 'BREACHED' : r.ok ? 'OK' : 'NOTHING TO VERIFY'
  const lines = [
    `${verdict}: ${r.orders} orders — ${r.completed} completed, ${r.cancelled} cancelled, ${r.unfinished} unfinished${r.stuck > 0 ? ` (${r.stuck} stuck)` : ''}`,
    `${r.records} records read, ${r.duplicate_records} of them repeats of a message_id already seen`,
  ]
  if (r.empty && !r.ok) lines.push('  ✗ no order on the topics: check --brokers and SAGA_TOPIC_PREFIX, or pass --allow-empty if none is expected')
  for (const b of r.breaches.slice(0, 50)) lines.push(`  ✗ ${b.order_id}  ${b.kind} (${b.rule}): ${b.detail}`)
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
