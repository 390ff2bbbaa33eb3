import { randomUUID } from 'node:crypto'

import type { Payload } from '../envelope.js'
import type { SagaStep } from '../saga/define.js'

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

/** The order every act carries, the same over HTTP and Kafka so that a rule means the same on either. */
export const CONFORM_ORDER: Payload = { user_id: 'conform', items: [{ sku: 'conform', qty: 1 }], amount: 100 }

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
