import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'

import type { StepAction, StepCommand, StepContext, StepResult } from '../saga/define.js'

// A step's participant that is an existing HTTP service: each command is a POST to the service,
// with the step's idempotency key, and the answer's status says what became of it.

export interface HttpParticipantOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string
  /** PEM file of the CA that signed the service's certificate (https). */
  caFile?: string
  /** Statuses that decline the step for good (compensated, not retried). */
  declined?: number[]
  /** Per call; the step's timeout (ctx.signal) applies too. */
  timeoutMs?: number
  /** Consecutive failures (5xx, timeouts, refused connections) that open the circuit. */
  circuitFailures?: number
  /** How long an open circuit refuses calls before it lets one through. */
  circuitOpenMs?: number
  /** The circuit's clock (tests move it on instead of waiting). */
  clock?: () => number
  /** Told of every call's outcome, and when the circuit opens or closes (metrics). */
  observe?: { call(outcome: 'ok' | 'declined' | 'failed' | 'refused-by-circuit'): void; circuit(open: boolean): void }
}

export const DEFAULT_DECLINED = [409, 422]
const DEFAULT_CIRCUIT_FAILURES = 5
const DEFAULT_CIRCUIT_OPEN_MS = 5_000
const DEFAULT_CALL_TIMEOUT_MS = 10_000

/** Stops calling a service that keeps failing, for a while, so a service that is down is not hammered. */
export class Circuit {
  #failures = 0
  #openUntil = 0
  constructor(
    private readonly threshold: number,
    private readonly openMs: number,
    private readonly onChange: (open: boolean) => void = () => {},
  ) {}

  /** Whether a call may go now: closed, or open long enough to try one (then the next waits for that one's outcome). */
  allows(now: number): boolean {
    if (now < this.#openUntil) return false
    if (this.#failures >= this.threshold) this.#openUntil = now + this.openMs
    return true
  }

  succeeded(): void {
    if (this.#failures >= this.threshold) this.onChange(false)
    this.#failures = 0
    this.#openUntil = 0
  }

  failed(now: number): void {
    this.#failures++
    if (this.#failures >= this.threshold) {
      if (this.#failures === this.threshold) this.onChange(true)
      this.#openUntil = now + this.openMs
    }
  }
}

interface Answer {
  status: number
  body: Record<string, unknown>
}

/** The step's act and undo as calls to `POST <base>/<command type>`. */
export function httpParticipant(base: string, options: HttpParticipantOptions = {}): { act: StepAction; undo: StepAction } {
  const declined = new Set(options.declined ?? DEFAULT_DECLINED)
  const ca = options.caFile ? fs.readFileSync(options.caFile) : undefined
  const circuit = new Circuit(options.circuitFailures ?? DEFAULT_CIRCUIT_FAILURES, options.circuitOpenMs ?? DEFAULT_CIRCUIT_OPEN_MS, (open) => {
    options.observe?.circuit(open)
  })
  const now = options.clock ?? Date.now
  const call = async (command: StepCommand, ctx: StepContext): Promise<StepResult> => {
    const url = new URL(`${base.replace(/\/+$/, '')}/${encodeURIComponent(command.type)}`)
    if (!circuit.allows(now())) {
      options.observe?.call('refused-by-circuit')
      throw new Error(`circuit open: ${url.origin} failed ${options.circuitFailures ?? DEFAULT_CIRCUIT_FAILURES} times in a row; not called`)
    }
    let answer: Answer
    try {
      answer = await post(url, { ...command.payload, order_id: command.order_id, saga_id: command.saga_id }, ctx, { ...(options.token ? { token: options.token } : {}), ...(ca ? { ca } : {}), timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS })
    } catch (error) {
      circuit.failed(now())
      options.observe?.call('failed')
      throw error
    }
    if (answer.status >= 200 && answer.status < 300) {
      circuit.succeeded()
      options.observe?.call('ok')
      return { ok: true, payload: answer.body }
    }
    if (declined.has(answer.status)) {
      circuit.succeeded()
      options.observe?.call('declined')
      return { declined: reasonOf(answer) }
    }
    circuit.failed(now())
    options.observe?.call('failed')
    throw new Error(`${url.pathname} answered ${answer.status}: ${reasonOf(answer)}`)
  }
  return { act: call, undo: call }
}

/** FastAPI says `detail`, others `reason`, `message` or `error`. */
function reasonOf(answer: Answer): string {
  for (const field of ['reason', 'detail', 'message', 'error']) {
    const value = answer.body[field]
    if (typeof value === 'string' && value !== '') return value
  }
  return `HTTP ${answer.status}`
}

async function post(url: URL, body: unknown, ctx: StepContext, o: { token?: string; ca?: Buffer; timeoutMs: number }): Promise<Answer> {
  const { status, text } = await postJson(url, JSON.stringify(body), { key: ctx.idempotencyKey, attempt: ctx.attempt, signal: ctx.signal, ...o })
  let parsed: unknown = {}
  try {
    parsed = text.length > 0 ? JSON.parse(text) : {}
  } catch {
    parsed = { reason: text.slice(0, 200) }
  }
  return { status, body: parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {} }
}

/** One POST as the bridge makes it: the key, the attempt, the token and the CA; the answer's status and text. */
export function postJson(url: URL, body: string, o: { key: string; attempt?: number; token?: string; ca?: Buffer; timeoutMs: number; signal?: AbortSignal }): Promise<{ status: number; text: string }> {
  const data = Buffer.from(body)
  const transport = url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': data.length,
          'idempotency-key': o.key,
          ...(o.attempt !== undefined ? { 'x-saga-attempt': String(o.attempt) } : {}),
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        },
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        timeout: o.timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (c: Buffer) => chunks.push(c))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        response.on('error', reject)
      },
    )
    request.on('timeout', () => request.destroy(new Error(`${url.pathname} did not answer within ${o.timeoutMs} ms`)))
    request.on('error', reject)
    request.end(data)
  })
}
