import { randomUUID } from 'node:crypto'
import fs from 'node:fs'

import { command as commandEnvelope, parseEnvelope, type Message, type Payload } from '../envelope.js'
import type { MessageBus } from '../kafka/port.js'
import type { SagaStep } from '../saga/define.js'
import type { TopicNames } from '../topics.js'
import { postJson } from '../services/http-bridge.js'
import { idempotencyKey } from '../services/participant.js'

// Checks a participant, in any language, against the contract a sagactl participant keeps: over
// HTTP (the bridge's calls) or over Kafka (its command topic and its replies), rule by rule, with
// fresh order ids of its own, so it never touches a live order.

export interface RuleResult {
  id: string
  rule: string
  ok: boolean
  seen: string
}

export interface ConformReport {
  ok: boolean
  step: string
  via: 'http' | 'kafka'
  target: string
  /** Where each command of the step was sent, e.g. `charge_payment → POST http://svc/charge_payment`. */
  sends: string[]
  rules: RuleResult[]
}

/** What the participant made of one command, in the saga's terms. */
export interface Reply {
  outcome: 'done' | 'declined' | 'failed' | 'confirmed' | 'none'
  /** The effect named by the reply (done, confirmed); null: confirmed with none. */
  effectId?: string | null
  repeated?: boolean
  /** What came back, for the report. */
  raw: string
  /** Set when the reply breaks the envelope (Kafka) or is not a JSON object (HTTP). */
  malformed?: string
  /** HTTP: the status and where it came from, so a failed rule shows what answered. */
  http?: { status: number; method: string; url: string }
  /** HTTP: the service has no route where conform posted (a 404); no rule can pass on such a reply. */
  noRoute?: string
}

export interface Ids {
  order_id: string
  saga_id: string
}

/** How conform talks to the participant: the same rules over HTTP or Kafka. */
export interface Driver {
  readonly via: 'http' | 'kafka'
  readonly target: string
  /** Where each command goes, for the report: a wrong path is the first thing to rule out. */
  readonly sends: string[]
  /** Sends the act; `messageId` repeats an earlier command exactly (Kafka), `abortAfterMs` gives up early (a timeout). */
  act(ids: Ids, attempt: number, o?: { messageId?: string; abortAfterMs?: number; mayBeSilent?: boolean }): Promise<Reply[]>
  undo(ids: Ids, attempt: number, effect: { id: string | null; payload: Payload }): Promise<Reply[]>
  /** Sends something that is not a command; says what became of it, and whether that is right. */
  malformed(): Promise<{ ok: boolean; seen: string }>
  close(): Promise<void>
}

export const RULES = [
  { id: 'same-command-twice', rule: 'the same command twice gives one effect and the same reply' },
  { id: 'undo-before-act', rule: 'undo before act is confirmed without an effect' },
  { id: 'undo-twice', rule: 'undo twice gives one undo' },
  { id: 'act-after-undo', rule: 'an act after its undo is not carried out' },
  { id: 'retry-after-timeout', rule: 'a retried act after a timeout gives one effect' },
  { id: 'malformed-command', rule: 'a malformed command does not stop the service' },
  { id: 'envelope', rule: 'its replies follow the envelope' },
] as const

const fresh = (): Ids => ({ order_id: `conform-${randomUUID()}`, saga_id: `conform-${randomUUID()}` })
const answered = (r: Reply): string => (r.http ? ` (${r.http.status} from ${r.http.method} ${r.http.url})` : '')
const show = (replies: Reply[]): string => (replies.length === 0 ? 'no reply' : replies.map((r) => `${r.outcome}${r.effectId !== undefined ? ` ${String(r.effectId)}` : ''}${r.repeated ? ' (repeated)' : ''}${answered(r)}`).join(', '))
const effectsOf = (replies: Reply[]): Set<string> => new Set(replies.filter((r) => r.outcome === 'done' && typeof r.effectId === 'string').map((r) => r.effectId as string))

export async function conform(driver: Driver, step: SagaStep): Promise<ConformReport> {
  const results: RuleResult[] = []
  const replies: Reply[] = []
  // The replies each rule got: one that hit no route says nothing of the contract, whatever its status would mean.
  let ruleReplies: Reply[] = []
  const check = async (id: (typeof RULES)[number]['id'], run: () => Promise<{ ok: boolean; seen: string }>): Promise<void> => {
    const rule = RULES.find((r) => r.id === id)!.rule
    ruleReplies = []
    try {
      const result = await run()
      const noRoute = [...new Set(ruleReplies.map((r) => r.noRoute).filter((x) => x !== undefined))]
      results.push({ id, rule, ...(noRoute.length > 0 ? { ok: false, seen: `no such route: ${noRoute.join('; ')}. ${result.seen}` } : result) })
    } catch (error) {
      results.push({ id, rule, ok: false, seen: `error: ${(error as Error).message}` })
    }
  }
  const collect = (rs: Reply[]): Reply[] => {
    replies.push(...rs)
    ruleReplies.push(...rs)
    return rs
  }

  await check('same-command-twice', async () => {
    const ids = fresh()
    // Over Kafka the very same message twice (a redelivery); over HTTP the same call with the same key.
    const messageId = randomUUID()
    const first = collect(await driver.act(ids, 1, { messageId }))
    // A redelivery may be dropped without a word: that is one effect too.
    const again = collect(await driver.act(ids, 1, { messageId, mayBeSilent: true }))
    const all = [...first, ...again]
    const effects = effectsOf(all)
    if (!all.some((r) => r.outcome === 'done')) return { ok: false, seen: `the act was not done: ${show(all)} (conform needs a participant that does the step)` }
    const sameReply = first.length > 0 && again.every((r) => r.outcome === first[0]!.outcome && r.effectId === first[0]!.effectId)
    return { ok: effects.size === 1 && sameReply, seen: `first: ${show(first)}; again: ${show(again)}` }
  })

  await check('undo-before-act', async () => {
    const rs = collect(await driver.undo(fresh(), 1, { id: null, payload: {} }))
    const ok = rs.length > 0 && rs.every((r) => r.outcome === 'confirmed' && (r.effectId === null || r.effectId === undefined))
    return { ok, seen: show(rs) }
  })

  await check('undo-twice', async () => {
    const ids = fresh()
    const acted = collect(await driver.act(ids, 1))
    const done = acted.find((r) => r.outcome === 'done')
    if (!done) return { ok: false, seen: `the act was not done (${show(acted)}), so there was nothing to undo` }
    const effect = { id: done.effectId ?? null, payload: {} }
    const first = collect(await driver.undo(ids, 1, effect))
    const second = collect(await driver.undo(ids, 2, effect))
    const confirmed = [...first, ...second].filter((r) => r.outcome === 'confirmed')
    const fresh_ = confirmed.filter((r) => !r.repeated)
    const ok = first.some((r) => r.outcome === 'confirmed') && second.some((r) => r.outcome === 'confirmed') && (driver.via === 'http' ? confirmed.every((r) => r.raw === confirmed[0]!.raw) : fresh_.length === 1)
    return { ok, seen: `first: ${show(first)}; second: ${show(second)}` }
  })

  await check('act-after-undo', async () => {
    const ids = fresh()
    const undone = collect(await driver.undo(ids, 1, { id: null, payload: {} }))
    const late = collect(await driver.act(ids, 1))
    // Declined for good: a transient failure would only be retried.
    const ok = late.length > 0 && late.every((r) => r.outcome === 'declined')
    return { ok, seen: `undo: ${show(undone)}; the act after it: ${show(late)}` }
  })

  await check('retry-after-timeout', async () => {
    const ids = fresh()
    collect(await driver.act(ids, 1, { abortAfterMs: 1 }))
    const retried = collect(await driver.act(ids, 2))
    const again = collect(await driver.act(ids, 3))
    const effects = effectsOf([...retried, ...again])
    return { ok: effects.size === 1 && retried.some((r) => r.outcome === 'done'), seen: `retry: ${show(retried)}; and again: ${show(again)}` }
  })

  await check('malformed-command', async () => {
    const bad = await driver.malformed()
    const after = collect(await driver.act(fresh(), 1))
    const alive = after.some((r) => r.outcome === 'done' || r.outcome === 'declined')
    return { ok: bad.ok && alive, seen: `${bad.seen}; a command after it: ${show(after)}` }
  })

  await check('envelope', async () => {
    // A 404 with a well-formed body is still no reply of the step's: the service has no route there.
    const broken = [...new Set(replies.filter((r) => r.malformed || r.noRoute).map((r) => r.malformed ?? `no such route: ${r.noRoute!}`))]
    return { ok: replies.length > 0 && broken.length === 0, seen: broken.length > 0 ? broken.join('; ') : `${replies.length} replies, all well-formed` }
  })

  await driver.close()
  return { ok: results.every((r) => r.ok), step: step.name, via: driver.via, target: driver.target, sends: driver.sends, rules: results }
}

const ORDER: Payload = { user_id: 'conform', items: [{ sku: 'conform', qty: 1 }], amount: 100 }

/** Where the bridge, and so conform, posts a command of this type: `<base>/<command type>`. */
export function commandUrl(base: string, type: string): URL {
  return new URL(`${base.replace(/\/+$/, '')}/${encodeURIComponent(type)}`)
}

/** The participant as an HTTP service: `POST <base>/<command type>`, as the bridge calls it. */
export function httpDriver(base: string, step: SagaStep, o: { declined: number[]; token?: string; caFile?: string; timeoutMs: number }): Driver {
  const url = (type: string) => commandUrl(base, type)
  const noRoute = (type: string): string => `POST ${url(type).href} answered 404`
  const ca = o.caFile ? fs.readFileSync(o.caFile) : undefined
  // A call given up on: the service did the work, its answer was lost on the way (the caller timed out).
  const post = async (type: string, key: string, body: unknown, attempt: number | undefined, answerLost = false): Promise<{ status: number; text: string } | undefined> => {
    const answer = await postJson(url(type), typeof body === 'string' ? body : JSON.stringify(body), { key, ...(attempt !== undefined ? { attempt } : {}), ...(o.token ? { token: o.token } : {}), ...(ca ? { ca } : {}), timeoutMs: o.timeoutMs })
    return answerLost ? undefined : answer
  }
  const reply = (answer: { status: number; text: string } | undefined, kind: 'act' | 'undo', effect?: string | null): Reply[] => {
    if (!answer) return []
    const type = kind === 'act' ? step.command.type : step.compensation.type
    const where = { http: { status: answer.status, method: 'POST', url: url(type).href }, ...(answer.status === 404 ? { noRoute: noRoute(type) } : {}) }
    return replyOf(answer, kind, effect).map((r) => ({ ...r, ...where }))
  }
  const replyOf = (answer: { status: number; text: string }, kind: 'act' | 'undo', effect?: string | null): Reply[] => {
    let body: unknown
    try {
      body = JSON.parse(answer.text)
    } catch {
      body = undefined
    }
    const empty = answer.text.trim() === ''
    const isObject = typeof body === 'object' && body !== null && !Array.isArray(body)
    const raw = `${answer.status} ${answer.text.slice(0, 200)}`
    // An empty 2xx is fine (the bridge reads it as {}); anything else must be a JSON object.
    const malformed = isObject || (empty && answer.status < 300) ? undefined : `${kind} answered ${answer.status} with a body that is not a JSON object: ${answer.text.slice(0, 80)}`
    if (answer.status >= 200 && answer.status < 300) {
      if (kind === 'undo') return [{ outcome: 'confirmed', effectId: effect ?? null, raw, ...(malformed ? { malformed } : {}) }]
      // The effect is what the service names it; without a name, the answer itself: a second charge answered alike cannot be told apart.
      const named = isObject ? (body as Record<string, unknown>)[step.effectId] : undefined
      return [{ outcome: 'done', effectId: typeof named === 'string' ? named : `answer ${answer.text.slice(0, 120)}`, raw, ...(malformed ? { malformed } : {}) }]
    }
    return [{ outcome: o.declined.includes(answer.status) ? 'declined' : 'failed', raw, ...(malformed ? { malformed } : {}) }]
  }
  return {
    via: 'http',
    target: base,
    sends: [step.command.type, step.compensation.type].map((type) => `${type} → POST ${url(type).href}`),
    async act(ids, attempt, x = {}) {
      const key = idempotencyKey(ids.saga_id, step.name, 'act')
      return reply(await post(step.command.type, key, { ...ORDER, attempt, ...ids }, attempt, x.abortAfterMs !== undefined), 'act')
    },
    async undo(ids, attempt, effect) {
      const key = idempotencyKey(ids.saga_id, step.name, 'undo')
      return reply(await post(step.compensation.type, key, { ...effect.payload, [step.effectId]: effect.id, attempt, ...ids }, attempt), 'undo', effect.id)
    },
    async malformed() {
      const answer = await post(step.command.type, `conform-${randomUUID()}`, '{"order_id": "conform-broken", not json', undefined)
      // A 404 is the missing route answering, not the service refusing the body.
      if (answer?.status === 404) return { ok: false, seen: `a body that is not JSON: no such route, ${noRoute(step.command.type)}` }
      const ok = answer !== undefined && answer.status >= 400 && answer.status < 500
      return { ok, seen: `a body that is not JSON answered ${answer ? `${answer.status} from POST ${url(step.command.type).href}` : 'nothing'}${ok ? '' : ' (a 4xx was expected)'}` }
    },
    async close() {},
  }
}

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
      return send(step.command.type, ids, { ...ORDER, attempt }, messageId, x.abortAfterMs, x.mayBeSilent)
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

export function renderConformReport(r: ConformReport): string {
  return [
    `conform ${r.step} over ${r.via} (${r.target}): ${r.ok ? 'PASS' : 'FAIL'}`,
    ...r.sends.map((s) => `  sends ${s}`),
    ...(r.rules.some((x) => x.seen.includes('no such route'))
      ? [`  a 404 is no such route: conform posts each command to <url>/<command type>, as the bridge does; the service must serve those paths`]
      : []),
    ...r.rules.map((x) => `  ${x.ok ? '✓' : '✗'} ${x.id}: ${x.rule}\n      seen: ${x.seen}`),
  ].join('\n')
}
