import { randomUUID } from 'node:crypto'
import fs from 'node:fs'

import type { SagaStep } from '../saga/define.js'
import { postJson } from '../services/http-bridge.js'
import { idempotencyKey } from '../services/participant.js'
import { CONFORM_ORDER, type Driver, type Reply } from './conform.js'

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
      return reply(await post(step.command.type, key, { ...CONFORM_ORDER, attempt, ...ids }, attempt, x.abortAfterMs !== undefined), 'act')
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
