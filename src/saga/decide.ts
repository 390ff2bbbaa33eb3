import { command, event, type CommandType, type Envelope, type EventType, type Message, type Outgoing, type Payload } from '../envelope.js'
import type { DecideContext, Notice, Timer } from '../runtime/role.js'
import type { TopicKey } from '../names.js'

// A small saga engine: a definition describes steps and compensations; `decide` is the pure
// function that moves one saga forward. The engine never sends anything itself.

export interface StepDefinition {
  name: string
  command: { type: CommandType; topic: TopicKey }
  succeeded: EventType
  failed: EventType
  /** Names the payload field of the success reply that identifies the effect (e.g. reservation_id). */
  effectId: string
  compensation?: { type: CommandType; topic: TopicKey; confirmed: EventType }
  /** This step's retry policy; what it leaves out comes from the saga's (the environment's). */
  retry?: StepRetryPolicy
}

/** A step's own retry policy: a named value in its module, visible in review. */
export interface StepRetryPolicy extends Partial<RetryPolicy> {
  /** Failure reasons (substrings) never retried, whatever the participant says. */
  notRetryable?: string[]
}

export interface SagaDefinition {
  started: EventType
  completed: EventType
  cancelled: EventType
  steps: StepDefinition[]
}

export interface RetryPolicy {
  maxAttempts: number
  minDelayMs: number
  maxDelayMs: number
  stepTimeoutMs: number
  /** Attempts per compensation, the first included; past them the saga is stuck until `saga retry`. */
  maxCompensationAttempts: number
}

/** Published when a compensation ran out of attempts: not final, but the saga waits for an operator. */
export const SAGA_STUCK = 'saga.stuck'
/** Published by `sagactl saga retry` on order.events, keyed like the saga, so it is ordered with its replies. */
export const RETRY_REQUESTED = 'saga.retry-requested'
/**
 * The orchestrator's own timers, due: a retry after a failure, or a step that did not answer in
 * time. Each is published to the order's partition of order.events and acted on when the
 * orchestrator reads it back, in log order with the replies (docs/commit-path.md says why).
 */
export const RETRY_DUE = 'saga.retry-due'
export const STEP_TIMED_OUT = 'saga.step-timed-out'
/**
 * Someone outside (the api's POST /orders/:id/cancel, `sagactl saga cancel`) asks to stop the
 * saga: on order.events, keyed by the order, so it is ordered with the saga's replies and the one
 * first in the log wins a race with the final event. Payload: reason, requested_by.
 */
export const CANCEL_REQUESTED = 'saga.cancel-requested'
/**
 * Events of the orchestrator about the saga as a whole, on order.events, for every saga whatever
 * its steps: a step module neither declares nor may take them.
 */
export const SAGA_LEVEL_EVENTS = [SAGA_STUCK, RETRY_REQUESTED, RETRY_DUE, STEP_TIMED_OUT, CANCEL_REQUESTED] as const

/** The orchestrator's answers to a retry request, on sagactl.control, caused by the request. */
export const RETRY_ACCEPTED = 'saga.retry-accepted'
export const RETRY_REFUSED = 'saga.retry-refused'
/** The orchestrator's answers to a cancel request, on sagactl.control, caused by the request. */
export const CANCEL_ACCEPTED = 'saga.cancel-accepted'
export const CANCEL_IGNORED = 'saga.cancel-ignored'
/** The reason order.cancelled carries for a saga cancelled from outside. */
export const cancelledByRequest = (reason: string): string => `cancelled by request: ${reason}`

export type SagaStatus = 'running' | 'waiting_retry' | 'compensating' | 'completed' | 'cancelled' | 'stuck'

export interface DoneStep {
  step: string
  result: Payload
  at: number
}

export interface SagaState {
  order_id: string
  saga_id: string
  order: Payload
  status: SagaStatus
  /** The step being run, retried or compensated; a name, never an index, so definitions can change. */
  step: string
  attempt: number
  done: DoneStep[]
  compensated: string[]
  /**
   * Steps whose outcome is unknown (in flight when the saga was cancelled, or whose last attempt
   * timed out or failed transiently): undone too, before the done ones. The participant's
   * contract makes that safe: an undo before its act confirms with no effect, and a late act is
   * not carried out.
   */
  uncertain?: string[]
  /** The cancel request that stopped the saga, when one did: who asked, why and when. */
  cancel_requested?: { reason: string; requested_by: string; at: number; request_id: string }
  /** Why the saga is being cancelled; the order.cancelled event carries it. */
  reason?: string
  /** Why the saga is stuck, while it is. */
  stuck_reason?: string
  /**
   * The attempt at which the current compensation's budget began: 1, or the attempt sent by the
   * latest `saga retry`. Attempt numbers keep rising across retries, so every resend is told apart.
   */
  budget_from?: number
  started_at: number
  updated_at: number
  finished_at?: number
}

export interface SagaDecision {
  state?: SagaState
  messages: Outgoing[]
  timer?: Timer | null
  notices: Notice[]
  reject?: string
}

const nothing = (): SagaDecision => ({ messages: [], notices: [] })

export function isFinished(state: SagaState): boolean {
  switch (state.status) {
    case 'completed':
    case 'cancelled':
      return true
    case 'running':
    case 'waiting_retry':
    case 'compensating':
    case 'stuck':
      return false
    default:
      return unreachable(state.status)
  }
}

/** The policy a step runs under: its own, over the saga's. */
export function policyFor(step: StepDefinition, policy: RetryPolicy): RetryPolicy & { notRetryable: string[] } {
  const own = step.retry ?? {}
  const merged = { ...policy, notRetryable: [] as string[] }
  for (const key of ['maxAttempts', 'minDelayMs', 'maxDelayMs', 'stepTimeoutMs', 'maxCompensationAttempts'] as const) if (own[key] !== undefined) merged[key] = own[key]
  if (own.notRetryable) merged.notRetryable = own.notRetryable
  return merged
}

export function retryDelay(policy: RetryPolicy, random: number): number {
  return policy.minDelayMs + Math.floor(random * (policy.maxDelayMs - policy.minDelayMs + 1))
}

/**
 * What a message is to a saga, decided once from the definition: a closed set, so every kind is
 * handled by the one `switch` in `decide` and the compiler says when a kind is added and not handled.
 */
export type SagaInput =
  | { kind: 'started' }
  | { kind: 'finished' }
  | { kind: 'retry-requested' }
  | { kind: 'cancel-requested' }
  | { kind: 'stuck' }
  | { kind: 'succeeded'; step: StepDefinition }
  | { kind: 'failed'; step: StepDefinition }
  | { kind: 'compensated'; step: StepDefinition }
  | { kind: 'retry-due'; step: StepDefinition | undefined }
  | { kind: 'timed-out'; step: StepDefinition | undefined }
  | { kind: 'unknown' }

export function classify(def: SagaDefinition, message: Message): SagaInput {
  const type = message.type
  if (type === def.started) return { kind: 'started' }
  if (type === def.completed || type === def.cancelled) return { kind: 'finished' }
  if (type === RETRY_REQUESTED) return { kind: 'retry-requested' }
  if (type === CANCEL_REQUESTED) return { kind: 'cancel-requested' }
  if (type === SAGA_STUCK) return { kind: 'stuck' }
  const succeeded = def.steps.find((s) => s.succeeded === type)
  if (succeeded) return { kind: 'succeeded', step: succeeded }
  const failed = def.steps.find((s) => s.failed === type)
  if (failed) return { kind: 'failed', step: failed }
  const confirmed = def.steps.find((s) => s.compensation?.confirmed === type)
  if (confirmed) return { kind: 'compensated', step: confirmed }
  const named = def.steps.find((x) => x.name === message.payload.step)
  if (type === RETRY_DUE) return { kind: 'retry-due', step: named }
  if (type === STEP_TIMED_OUT) return { kind: 'timed-out', step: named }
  return { kind: 'unknown' }
}

export function decide(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  const input = classify(def, message)
  switch (input.kind) {
    case 'started':
      return current ? nothing() : start(def, policy, message, ctx)
    case 'finished':
      return onFinal(def, current, message, ctx)
    case 'retry-requested':
      return onRetryRequested(def, policy, current, message, ctx)
    case 'cancel-requested':
      return onCancelRequested(def, policy, current, message, ctx)
    case 'stuck':
      return onStuckEvent(current, message, ctx)
    case 'unknown':
      return { ...nothing(), reject: `unknown event type "${message.type}"` }
    case 'succeeded':
    case 'failed':
    case 'compensated':
    case 'retry-due':
    case 'timed-out':
      // A reply for a saga this orchestrator never started (lost database, foreign producer): nothing to move.
      return current ? onStepInput(def, policy, current, input, message, ctx) : nothing()
    default:
      return unreachable(input)
  }
}

function unreachable(input: never): never {
  throw new Error(`unhandled saga input ${JSON.stringify(input)}`)
}

type StepInput = Extract<SagaInput, { kind: 'succeeded' | 'failed' | 'compensated' | 'retry-due' | 'timed-out' }>

function onStepInput(def: SagaDefinition, policy: RetryPolicy, current: SagaState, input: StepInput, message: Message, ctx: DecideContext): SagaDecision {
  const s: SagaState = structuredClone(current)
  s.updated_at = ctx.now
  const attempt = typeof message.payload.attempt === 'number' ? message.payload.attempt : undefined
  const step = input.step
  switch (input.kind) {
    case 'succeeded':
      return onSucceeded(def, policy, s, input.step, message, ctx)
    case 'failed': {
      const retryable = message.payload.retryable !== false
      const reason = typeof message.payload.reason === 'string' ? message.payload.reason : `${input.step.name} failed`
      // The log can be ahead of this state: a rebuild by replay never sees the retry timers, only
      // the replies. A reply to the next attempt proves that retry ran.
      if (attempt !== undefined && isCurrent(s, input.step.name, attempt - 1, 'waiting_retry')) {
        s.status = 'running'
        s.attempt = attempt
      }
      if (!isCurrent(s, input.step.name, attempt, 'running')) return nothing()
      return onFailure(def, policy, s, input.step, { retryable, reason }, ctx)
    }
    case 'compensated': {
      const confirmed = input.step
      // A stuck saga still takes its confirmation: a participant that was down answers its backlog when it is back.
      if ((s.status !== 'compensating' && s.status !== 'stuck') || s.step !== confirmed.name || s.compensated.includes(confirmed.name)) return nothing()
      const late = s.status === 'stuck'
      s.status = 'compensating'
      delete s.stuck_reason
      s.compensated.push(confirmed.name)
      return compensateNext(def, policy, s, ctx, [notice('info', late ? `compensated ${confirmed.name}; the saga is no longer stuck` : `compensated ${confirmed.name}`, s)])
    }
    case 'retry-due':
      if (!step || !isCurrent(s, step.name, attempt === undefined ? undefined : attempt - 1, 'waiting_retry')) return nothing()
      s.status = 'running'
      s.attempt += 1
      return { state: s, ...runStep(step, policy, s, ctx), notices: [notice('info', `retrying ${step.name}, attempt ${s.attempt}`, s)] }
    case 'timed-out':
      if (!step) return nothing()
      if (isCurrent(s, step.name, attempt, 'running')) {
        return onFailure(def, policy, s, step, { retryable: true, reason: `no reply to ${step.command.type} within ${policyFor(step, policy).stepTimeoutMs} ms` }, ctx)
      }
      if (isCurrent(s, step.name, attempt, 'compensating') && step.compensation) {
        const spent = s.attempt - (s.budget_from ?? 1) + 1
        if (spent >= policyFor(step, policy).maxCompensationAttempts) return becomeStuck(s, step, spent, ctx)
        // Resent (the participant is idempotent) until confirmed or out of attempts.
        s.attempt += 1
        return { state: s, ...sendCompensation(step, policy, s, ctx), notices: [notice('warn', `resending compensation of ${step.name}`, s)] }
      }
      return nothing()
    default:
      return unreachable(input)
  }
}

/**
 * Past its budget a compensation is not resent: the saga waits, with no timer, for its
 * confirmation or for `sagactl saga retry`. It is not finished, so no final event; saga.stuck
 * says so on the log, for verify and for anyone reading it.
 */
function becomeStuck(s: SagaState, step: StepDefinition, spent: number, ctx: DecideContext): SagaDecision {
  s.status = 'stuck'
  s.stuck_reason = `compensation of ${step.name} (${step.compensation!.type}) not confirmed after ${spent} attempt${spent === 1 ? '' : 's'}`
  const payload = { step: step.name, attempt: s.attempt, reason: s.stuck_reason }
  return {
    state: s,
    messages: [{ topic: 'orderEvents', envelope: event(SAGA_STUCK, { order_id: s.order_id, saga_id: s.saga_id, payload }, ctx.now, ctx.newId()) }],
    timer: null,
    notices: [notice('error', `saga STUCK: ${s.stuck_reason}; resume it with \`sagactl saga retry ${s.order_id}\``, s)],
  }
}

/**
 * Only a stuck saga is resumed: its pending compensation is sent again with a fresh budget. Any
 * other state is left alone. Either way the requester gets an answer on the control topic.
 */
function onRetryRequested(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  const answer = (type: string, s: SagaState | undefined, extra: Payload): Outgoing => ({
    topic: 'control',
    envelope: event(type, { order_id: message.order_id, saga_id: s?.saga_id ?? message.saga_id, payload: { ...(s ? { status: s.status, step: s.step, attempt: s.attempt } : {}), ...extra }, causation_id: message.message_id }, ctx.now, ctx.newId()),
  })
  const step = current && stepNamed(def, current.step)
  if (!current || current.status !== 'stuck' || !step?.compensation) {
    const why = current ? `the saga is ${current.status}, not stuck; nothing to retry` : 'no saga for this order at the orchestrator'
    return { messages: [answer(RETRY_REFUSED, current, { reason: why })], notices: [{ level: 'info', msg: `retry request ignored: ${why}`, fields: { order_id: message.order_id } }] }
  }
  const s: SagaState = structuredClone(current)
  s.updated_at = ctx.now
  s.status = 'compensating'
  delete s.stuck_reason
  s.attempt += 1
  s.budget_from = s.attempt
  const sent = sendCompensation(step, policy, s, ctx)
  return {
    state: s,
    messages: [...sent.messages, answer(RETRY_ACCEPTED, s, { attempts: policyFor(step, policy).maxCompensationAttempts })],
    timer: sent.timer,
    notices: [notice('warn', `retry requested: resending compensation of ${step.name}, up to ${policyFor(step, policy).maxCompensationAttempts} more attempt(s)`, s)],
  }
}

/**
 * A cancel request stops the saga where it stands: no further retry; the step in flight (or
 * waiting for its retry) is undone at once, its outcome being unknown, then every done step
 * newest first; then the cancelled event with the requester's reason. A saga that already ended,
 * or is already being compensated, is left as it is. Either way the requester gets an answer on
 * the control topic, and the log says what was done.
 */
function onCancelRequested(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  const given = message.payload.reason
  const reason = typeof given === 'string' && given.trim() !== '' ? given.trim() : 'no reason given'
  const requestedBy = typeof message.payload.requested_by === 'string' && message.payload.requested_by !== '' ? message.payload.requested_by : 'unknown'
  const answer = (type: string, s: SagaState | undefined, extra: Payload): Outgoing => ({
    topic: 'control',
    envelope: event(type, { order_id: message.order_id, saga_id: s?.saga_id ?? message.saga_id, payload: { ...(s ? { status: s.status, step: s.step, attempt: s.attempt } : {}), ...extra }, causation_id: message.message_id }, ctx.now, ctx.newId()),
  })
  const ignored = (why: string): SagaDecision => ({
    messages: [answer(CANCEL_IGNORED, current, { reason: why })],
    notices: [{ level: 'info', msg: `cancel request ignored: ${why}`, fields: { order_id: message.order_id, requested_by: requestedBy, request_id: message.message_id } }],
  })
  if (!current) return ignored('no saga for this order at the orchestrator')
  if (current.cancel_requested) return ignored(`already cancelled by request (${current.cancel_requested.request_id}); the saga is ${current.status}`)
  switch (current.status) {
    case 'completed':
    case 'cancelled':
      return ignored(`the saga already ended: ${current.status}; nothing changed`)
    case 'compensating':
    case 'stuck':
      return ignored(`the saga is already ${current.status} (${current.reason ?? 'no reason'}); it ends cancelled`)
    case 'running':
    case 'waiting_retry':
      break
    default:
      return unreachable(current.status)
  }
  const s: SagaState = structuredClone(current)
  s.updated_at = ctx.now
  s.cancel_requested = { reason, requested_by: requestedBy, at: ctx.now, request_id: message.message_id }
  s.reason = cancelledByRequest(reason)
  if (!s.done.some((d) => d.step === s.step)) markUncertain(s, s.step)
  s.status = 'compensating'
  const d = compensateNext(def, policy, s, ctx, [notice('warn', `cancel requested by ${requestedBy}: ${reason}; compensating`, s)])
  return { ...d, messages: [...d.messages, answer(CANCEL_ACCEPTED, d.state, { reason: s.reason })] }
}

function markUncertain(s: SagaState, step: string): void {
  const uncertain = s.uncertain ?? []
  if (!uncertain.includes(step)) uncertain.push(step)
  s.uncertain = uncertain
}

/**
 * The orchestrator reads its own saga.stuck back, and then already agrees. A state rebuilt by
 * replay never saw the timeouts that led there, so the log is ahead of it: take the event's word.
 */
function onStuckEvent(current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  const { step, attempt, reason } = message.payload
  if (!current || current.status !== 'compensating' || current.step !== step || typeof attempt !== 'number' || attempt < current.attempt) return nothing()
  const s: SagaState = { ...structuredClone(current), status: 'stuck', attempt, updated_at: ctx.now, stuck_reason: typeof reason === 'string' ? reason : 'compensation not confirmed' }
  return { state: s, messages: [], timer: null, notices: [notice('info', `saga settled as stuck by ${SAGA_STUCK} from the log`, s)] }
}

/**
 * A final event on the log is the last word on a saga: normally this orchestrator sent it and
 * already agrees; after a rebuild by replay it settles a saga whose timers were never replayed.
 */
function onFinal(def: SagaDefinition, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  if (!current || isFinished(current)) return nothing()
  const s: SagaState = { ...structuredClone(current), status: message.type === def.completed ? 'completed' : 'cancelled', updated_at: ctx.now, finished_at: ctx.now }
  if (typeof message.payload.reason === 'string') s.reason = message.payload.reason
  return { state: s, messages: [], timer: null, notices: [notice('info', `saga settled by ${message.type} from the log`, s)] }
}

function start(def: SagaDefinition, policy: RetryPolicy, message: Message, ctx: DecideContext): SagaDecision {
  const first = def.steps[0]
  if (!first) throw new Error('a saga needs at least one step')
  const s: SagaState = {
    order_id: message.order_id,
    saga_id: message.saga_id,
    order: message.payload,
    status: 'running',
    step: first.name,
    attempt: 1,
    done: [],
    compensated: [],
    started_at: ctx.now,
    updated_at: ctx.now,
  }
  return { state: s, ...runStep(first, policy, s, ctx), notices: [notice('info', 'saga started', s)] }
}

function onSucceeded(def: SagaDefinition, policy: RetryPolicy, s: SagaState, step: StepDefinition, message: Message, ctx: DecideContext): SagaDecision {
  if (s.done.some((d) => d.step === step.name)) return nothing()
  const { attempt: _attempt, ...result } = message.payload
  s.done.push({ step: step.name, result, at: ctx.now })

  if ((s.status === 'running' || s.status === 'waiting_retry') && s.step === step.name) {
    const next = def.steps[def.steps.indexOf(step) + 1]
    if (next) {
      s.status = 'running'
      s.step = next.name
      s.attempt = 1
      return { state: s, ...runStep(next, policy, s, ctx), notices: [] }
    }
    s.status = 'completed'
    s.finished_at = ctx.now
    const results = Object.assign({}, ...s.done.map((d) => d.result)) as Payload
    return {
      state: s,
      messages: [{ topic: 'orderEvents', envelope: event(def.completed, { ...ids(s, message), payload: results }, ctx.now, ctx.newId()) }],
      timer: null,
      notices: [notice('info', 'saga completed', s)],
    }
  }
  // Undone already as uncertain (or queued to be): the reply only says what that undo undoes.
  if (s.uncertain?.includes(step.name)) return { state: s, messages: [], notices: [notice('info', `late ${step.succeeded}: ${step.name} is undone with the rest`, s)] }
  // The effect happened after the saga gave up on it (a late reply): undo it, or it would leak.
  if (!step.compensation) return { state: s, messages: [], notices: [] }
  // Counted as compensated now, so the compensation stack does not send it a second time.
  s.compensated.push(step.name)
  return {
    state: s,
    messages: [compensationMessage(step, s, { ...result, attempt: 1 }, ctx, message.message_id)],
    notices: [notice('warn', `late ${step.succeeded} after the saga moved on; compensating it`, s)],
  }
}

function onFailure(
  def: SagaDefinition,
  policy: RetryPolicy,
  s: SagaState,
  step: StepDefinition,
  failure: { retryable: boolean; reason: string },
  ctx: DecideContext,
): SagaDecision {
  const own = policyFor(step, policy)
  const retryable = failure.retryable && !own.notRetryable.some((r) => failure.reason.includes(r))
  if (retryable && s.attempt < own.maxAttempts) {
    const delay = retryDelay(own, ctx.random())
    s.status = 'waiting_retry'
    const timerMessage = event(RETRY_DUE, { order_id: s.order_id, saga_id: s.saga_id, payload: { step: step.name, attempt: s.attempt + 1 } }, ctx.now, ctx.newId())
    return {
      state: s,
      messages: [],
      timer: { dueAt: ctx.now + delay, message: timerMessage },
      notices: [notice('warn', `${step.name} attempt ${s.attempt} failed (${failure.reason}); retry in ${delay} ms`, s)],
    }
  }
  s.status = 'compensating'
  s.reason = retryable ? `${failure.reason} (after ${s.attempt} attempts)` : failure.reason
  // A timeout or a transient failure hides whether the step's last attempt took effect: undone too,
  // first. A participant confirms an undo of what it never did, and does not act after its undo.
  if (failure.retryable) markUncertain(s, step.name)
  return compensateNext(def, policy, s, ctx, [notice('warn', `${step.name} failed for good: ${s.reason}; compensating${failure.retryable ? `, ${step.name} included (its outcome is unknown)` : ''}`, s)])
}

/**
 * Compensations run newest first, the uncertain steps (always newer than the done ones) before the
 * done ones; each waits for its confirmation before the next.
 */
function compensateNext(def: SagaDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext, notices: Notice[]): SagaDecision {
  const newestFirst = [...(s.uncertain ?? [])].reverse().concat([...s.done].reverse().map((d) => d.step))
  const pending = newestFirst.find((name) => !s.compensated.includes(name) && stepNamed(def, name)?.compensation)
  if (pending) {
    const step = stepNamed(def, pending)!
    s.step = step.name
    s.attempt = 1
    delete s.budget_from
    return { state: s, ...sendCompensation(step, policy, s, ctx), notices }
  }
  s.status = 'cancelled'
  s.finished_at = ctx.now
  const payload = { reason: s.reason ?? 'cancelled', compensated: s.compensated }
  return {
    state: s,
    messages: [{ topic: 'orderEvents', envelope: event(def.cancelled, { order_id: s.order_id, saga_id: s.saga_id, payload }, ctx.now, ctx.newId()) }],
    timer: null,
    notices: [...notices, notice('warn', `saga cancelled: ${payload.reason}`, s)],
  }
}

function runStep(step: StepDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext): { messages: Outgoing[]; timer: Timer } {
  const payload = { ...s.order, attempt: s.attempt }
  return {
    messages: [{ topic: step.command.topic, envelope: command(step.command.type, { order_id: s.order_id, saga_id: s.saga_id, payload }, ctx.now, ctx.newId()) }],
    timer: timeout(step, policy, s, ctx),
  }
}

function sendCompensation(step: StepDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext): { messages: Outgoing[]; timer: Timer } {
  const done = s.done.find((d) => d.step === step.name)
  return {
    messages: [compensationMessage(step, s, { ...done?.result, attempt: s.attempt }, ctx)],
    timer: timeout(step, policy, s, ctx),
  }
}

function compensationMessage(step: StepDefinition, s: SagaState, payload: Payload, ctx: DecideContext, causation?: string): Outgoing {
  const c = step.compensation!
  return { topic: c.topic, envelope: command(c.type, { order_id: s.order_id, saga_id: s.saga_id, payload, ...(causation ? { causation_id: causation } : {}) }, ctx.now, ctx.newId()) }
}

function timeout(step: StepDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext): Timer {
  return {
    dueAt: ctx.now + policyFor(step, policy).stepTimeoutMs,
    message: event(STEP_TIMED_OUT, { order_id: s.order_id, saga_id: s.saga_id, payload: { step: step.name, attempt: s.attempt } }, ctx.now, ctx.newId()),
  }
}

function isCurrent(s: SagaState, step: string, attempt: number | undefined, status: SagaStatus): boolean {
  return s.status === status && s.step === step && (attempt === undefined || attempt === s.attempt)
}

function stepNamed(def: SagaDefinition, name: string): StepDefinition | undefined {
  return def.steps.find((s) => s.name === name)
}

function ids(s: SagaState, message: Envelope): { order_id: string; saga_id: string; causation_id: string } {
  return { order_id: s.order_id, saga_id: s.saga_id, causation_id: message.message_id }
}

function notice(level: Notice['level'], msg: string, s: SagaState): Notice {
  return { level, msg, fields: { order_id: s.order_id, saga_id: s.saga_id, step: s.step, attempt: s.attempt, status: s.status } }
}
