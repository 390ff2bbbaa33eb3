import { event, type CommandType, type EventType, type Message, type Outgoing, type Payload } from '../envelope.js'
import { tooOldToTrust } from '../runtime/retention.js'
import type { DecideContext, Decision, Notice, RoleHandler, StateStore } from '../runtime/role.js'
import { derivedIds } from '../runtime/ids.js'
import type { ParticipantRole, SagaStep, StepAction, StepLog, StepResult } from '../saga/define.js'
import { inventory } from '../order-saga/inventory.js'
import { payment } from '../order-saga/payment.js'
import type { TopicKey } from '../topics.js'

// The stub participants differ only in names and numbers, which each step module declares; the
// behaviour — idempotent effects, chaos on demand, a success rate — is shared here.

export interface ParticipantSpec {
  name: ParticipantRole
  /** The step's name: with the saga id, it makes the idempotency key of the step's code. */
  step?: string
  topic: TopicKey
  /** `code`: the step module's act; absent, the stub (a success rate) decides. */
  act: { command: CommandType; succeeded: EventType; failed: EventType; failure: { reason: string; retryable: boolean }; code?: StepAction }
  undo: { command: CommandType; confirmed: EventType; code?: StepAction }
  effectId: string
  /** Fields of the command's payload echoed in the success reply. */
  echo: string[]
}

export interface Effect {
  effect_id: string
  status: 'held' | 'released'
  payload: Payload
  at: number
  /** The undo came first (the act was late, or never sent): the act is not carried out when it comes. */
  undone_first?: true
}

export interface Chaos {
  fail: number
  reject: number
}

export interface ParticipantState {
  effect?: Effect
  chaos: Chaos
}

export interface ParticipantDecision {
  effect?: Effect
  chaos?: Chaos
  messages: Outgoing[]
  notices: Notice[]
  reject?: string
}

export interface ParticipantOptions {
  successRate: number
  allowChaos: boolean
  /** How long the step's code may take: past it, its signal aborts (the orchestrator stopped waiting). */
  stepTimeoutMs?: number
  log?: StepLog
  /** SAGA_RETENTION: a command older than this, for an effect not (or no longer) known, is not carried out. */
  retentionMs?: number
}

export const NO_CHAOS: Chaos = { fail: 0, reject: 0 }

/** What the step's code did, as prepare() hands it to the decision. */
export type StepOutcome = { kind: 'ok'; payload: Payload } | { kind: 'declined'; reason: string } | { kind: 'error'; reason: string }

/** The same for every attempt and redelivery of one step of one saga; undo has its own. */
export function idempotencyKey(sagaId: string, step: string, kind: 'act' | 'undo'): string {
  return derivedIds(`${sagaId}|${step}|${kind}`)()
}

const DEFAULT_CODE_TIMEOUT_MS = 30_000
const SILENT: StepLog = { info: () => {}, warn: () => {}, error: () => {} }

function outcomeOf(result: StepResult | undefined): StepOutcome {
  if (result && typeof result === 'object') {
    if ('ok' in result && result.ok === true) return { kind: 'ok', payload: result.payload && typeof result.payload === 'object' ? result.payload : {} }
    if ('declined' in result && typeof result.declined === 'string') return { kind: 'declined', reason: result.declined }
  }
  return { kind: 'error', reason: 'the step returned neither { ok: true } nor { declined: "<reason>" }' }
}

/**
 * Runs the step's code for a command the decision will have to answer, outside the transaction.
 * Nothing for a command already answered (its effect is held), a chaos-driven failure, or a stub.
 */
export async function prepareParticipant(spec: ParticipantSpec, options: ParticipantOptions, state: ParticipantState, message: Message, now: number): Promise<StepOutcome | undefined> {
  const attempt = message.payload.attempt ?? 1
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return undefined
  const isAct = message.type === spec.act.command
  const code = isAct ? spec.act.code : message.type === spec.undo.command ? spec.undo.code : undefined
  if (!code) return undefined
  if (isAct && (state.effect || state.chaos.fail > 0 || state.chaos.reject > 0)) return undefined
  if (!isAct && state.effect?.status !== 'held') return undefined
  if (!state.effect && tooOldToTrust(message, now, options.retentionMs)) return undefined
  const payload = isAct ? message.payload : { ...state.effect!.payload, ...message.payload, [spec.effectId]: state.effect!.effect_id }
  const ctx = {
    idempotencyKey: idempotencyKey(message.saga_id, spec.step ?? spec.act.command, isAct ? 'act' : 'undo'),
    attempt,
    now,
    log: options.log ?? SILENT,
    signal: AbortSignal.timeout(options.stepTimeoutMs ?? DEFAULT_CODE_TIMEOUT_MS),
  }
  // Code that ignores its signal must not hold the partition: past the timeout its answer is not awaited.
  const timeoutMs = options.stepTimeoutMs ?? DEFAULT_CODE_TIMEOUT_MS
  const timedOut = new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error(`${message.type} did not finish within ${timeoutMs} ms`)), { once: true }))
  timedOut.catch(() => undefined)
  try {
    return outcomeOf(await Promise.race([code({ type: message.type, order_id: message.order_id, saga_id: message.saga_id, payload }, ctx), timedOut]))
  } catch (error) {
    return { kind: 'error', reason: (error as Error).message || String(error) }
  }
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined
}

export function decideParticipant(spec: ParticipantSpec, options: ParticipantOptions, state: ParticipantState, message: Message, ctx: DecideContext): ParticipantDecision {
  const attempt = message.payload.attempt ?? 1
  const reply = (type: string, payload: Payload): Outgoing => ({
    topic: 'orderEvents',
    envelope: event(type, { order_id: message.order_id, saga_id: message.saga_id, payload: { ...payload, attempt }, causation_id: message.message_id }, ctx.now, ctx.newId()),
  })
  const fields = { order_id: message.order_id, saga_id: message.saga_id, attempt }

  if (message.type === 'set_chaos') return setChaos(spec, options, state, message, ctx)
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return { messages: [], notices: [], reject: 'payload.attempt must be an integer ≥ 1' }

  // With no effect held, an old command may belong to an order already done and forgotten: carrying
  // it out would take a second effect, answering it would speak for a finished saga. A saga still
  // waiting for it times out and retries with a fresh command.
  if ((message.type === spec.act.command || message.type === spec.undo.command) && !state.effect && tooOldToTrust(message, ctx.now, options.retentionMs)) {
    return { messages: [], notices: [{ level: 'warn', msg: `${message.type} older than SAGA_RETENTION ignored: it may belong to an order already finished and forgotten`, fields }] }
  }

  if (message.type === spec.act.command) {
    const { effect } = state
    if (effect?.undone_first) {
      return {
        messages: [reply(spec.act.failed, { reason: `${spec.act.command} came after its undo: not carried out`, retryable: false })],
        notices: [{ level: 'warn', msg: `${spec.act.command} after its undo; not carried out`, fields }],
      }
    }
    if (effect) {
      // Already done for this saga: the same answer again, and no second effect.
      return { messages: [reply(spec.act.succeeded, { ...effect.payload, [spec.effectId]: effect.effect_id, repeated: true })], notices: [{ level: 'info', msg: `${spec.act.command} repeated; replying with the same ${spec.effectId}`, fields }] }
    }

    const chaos = { ...state.chaos }
    let failure: { reason: string; retryable: boolean } | undefined
    if (chaos.reject > 0) {
      chaos.reject -= 1
      failure = { reason: 'rejected by chaos', retryable: false }
    } else if (chaos.fail > 0) {
      chaos.fail -= 1
      failure = { reason: 'failed by chaos', retryable: true }
    } else if (spec.act.code) {
      const done = ctx.prepared as StepOutcome | undefined
      if (!done) failure = { reason: `${spec.act.command} was not carried out here`, retryable: true }
      else if (done.kind === 'declined') failure = { reason: done.reason, retryable: false }
      else if (done.kind === 'error') failure = { reason: done.reason, retryable: true }
    } else if (ctx.random() >= options.successRate) {
      failure = spec.act.failure
    }
    const chaosChanged = chaos.fail !== state.chaos.fail || chaos.reject !== state.chaos.reject
    if (failure) {
      return {
        ...(chaosChanged ? { chaos } : {}),
        messages: [reply(spec.act.failed, { reason: failure.reason, retryable: failure.retryable })],
        notices: [{ level: 'warn', msg: `${spec.act.command} failed: ${failure.reason}`, fields }],
      }
    }
    const done = ctx.prepared as StepOutcome | undefined
    const echoed = { ...Object.fromEntries(spec.echo.filter((k) => k in message.payload).map((k) => [k, message.payload[k]])), ...(done?.kind === 'ok' ? done.payload : {}) }
    // The step's code may name its effect (the outside service's id); otherwise its idempotency key does.
    const named = echoed[spec.effectId]
    const effectId = typeof named === 'string' && named !== '' ? named : spec.act.code ? idempotencyKey(message.saga_id, spec.step ?? spec.act.command, 'act') : ctx.newId()
    const next: Effect = { effect_id: effectId, status: 'held', payload: echoed, at: ctx.now }
    return {
      effect: next,
      messages: [reply(spec.act.succeeded, { ...echoed, [spec.effectId]: next.effect_id })],
      notices: [{ level: 'info', msg: `${spec.act.command} done`, fields: { ...fields, [spec.effectId]: next.effect_id } }],
    }
  }

  if (message.type === spec.undo.command) {
    const { effect } = state
    if (!effect) {
      // Remembered, so that the act, if it comes late, is not carried out after its undo.
      const tombstone: Effect = { effect_id: '', status: 'released', payload: {}, at: ctx.now, undone_first: true }
      return { effect: tombstone, messages: [reply(spec.undo.confirmed, { [spec.effectId]: null, note: 'nothing to undo' })], notices: [] }
    }
    if (effect.undone_first) {
      return { messages: [reply(spec.undo.confirmed, { [spec.effectId]: null, note: 'nothing to undo', repeated: true })], notices: [] }
    }
    if (effect.status === 'released') {
      return { messages: [reply(spec.undo.confirmed, { ...effect.payload, [spec.effectId]: effect.effect_id, repeated: true })], notices: [] }
    }
    if (spec.undo.code) {
      const done = ctx.prepared as StepOutcome | undefined
      if (done?.kind !== 'ok') {
        // No answer: the orchestrator sends the compensation again when its timeout passes.
        const why = !done ? 'not carried out here' : done.reason
        return { messages: [], notices: [{ level: 'warn', msg: `${spec.undo.command} failed: ${why}; waiting for the orchestrator to send it again`, fields }] }
      }
    }
    const released: Effect = { ...effect, status: 'released', at: ctx.now }
    return {
      effect: released,
      messages: [reply(spec.undo.confirmed, { ...effect.payload, [spec.effectId]: effect.effect_id })],
      notices: [{ level: 'warn', msg: `${spec.undo.command} done`, fields: { ...fields, [spec.effectId]: effect.effect_id } }],
    }
  }
  return { messages: [], notices: [], reject: `${spec.name} does not handle "${message.type}"` }
}

function setChaos(spec: ParticipantSpec, options: ParticipantOptions, state: ParticipantState, message: Message, ctx: DecideContext): ParticipantDecision {
  const ack = (type: string, payload: Payload): Outgoing => ({
    topic: 'control',
    envelope: event(type, { order_id: message.order_id, saga_id: message.saga_id, payload: { role: spec.name, ...payload }, causation_id: message.message_id }, ctx.now, ctx.newId()),
  })
  if (!options.allowChaos) {
    return { messages: [ack('chaos.refused', { reason: 'SAGA_ALLOW_CHAOS is not true for this role' })], notices: [{ level: 'warn', msg: 'chaos command refused (SAGA_ALLOW_CHAOS is off)' }] }
  }
  const { fail, reject, clear } = message.payload
  if (clear !== true && count(fail) === undefined && count(reject) === undefined) {
    return { messages: [], notices: [], reject: 'set_chaos needs payload.fail or payload.reject (integers ≥ 0) or payload.clear' }
  }
  const chaos: Chaos = clear === true ? { ...NO_CHAOS } : { fail: count(fail) ?? state.chaos.fail, reject: count(reject) ?? state.chaos.reject }
  return { chaos, messages: [ack('chaos.applied', { ...chaos })], notices: [{ level: 'warn', msg: `chaos set: next ${chaos.fail} attempts fail, next ${chaos.reject} are rejected` }] }
}

const CHAOS_SCOPE = 'chaos'
const EFFECT_SCOPE = 'effect'

export function participantRole(spec: ParticipantSpec, options: ParticipantOptions): RoleHandler {
  const read = (store: Pick<StateStore, 'get'>, message: Message): ParticipantState => ({
    effect: message.type === 'set_chaos' ? undefined : store.get<Effect>(EFFECT_SCOPE, message.order_id),
    chaos: store.get<Chaos>(CHAOS_SCOPE, spec.name) ?? NO_CHAOS,
  })
  return {
    name: spec.name,
    consumes: [spec.topic],
    ...(spec.act.code || spec.undo.code ? { prepare: (message: Message, store: Pick<StateStore, 'get'>) => prepareParticipant(spec, options, read(store, message), message, Date.now()) } : {}),
    handle(message: Message, store: StateStore, ctx: DecideContext): Decision {
      const d = decideParticipant(spec, options, read(store, message), message, ctx)
      if (d.effect) store.put(EFFECT_SCOPE, message.order_id, d.effect)
      if (d.chaos) store.put(CHAOS_SCOPE, spec.name, d.chaos)
      return d
    },
    // Chaos is the role's, not an order's; an effect is idle-forgotten, as a participant cannot tell when its order is over.
    settled: (scope) => scope !== CHAOS_SCOPE,
  }
}

/** The participant of a step, as its module declares it. */
export function participantSpec(step: SagaStep): ParticipantSpec {
  return {
    name: step.role,
    step: step.name,
    topic: step.topic.key,
    act: { command: step.command.type, succeeded: step.succeeded, failed: step.failed, failure: step.participant.failure, ...(step.act ? { code: step.act } : {}) },
    undo: { command: step.compensation.type, confirmed: step.compensation.confirmed, ...(step.undo ? { code: step.undo } : {}) },
    effectId: step.effectId,
    echo: step.participant.echo,
  }
}

export const inventorySpec = participantSpec(inventory)
export const paymentSpec = participantSpec(payment)
