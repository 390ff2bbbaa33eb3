import { command, event, type Outgoing, type Payload } from '../envelope.js'
import type { DecideContext, Notice, Timer } from '../runtime/role.js'
import { RETRY_DUE, SAGA_STUCK, STEP_TIMED_OUT } from './messages.js'
import { policyFor, retryDelay, type RetryPolicy, type SagaDecision, type SagaDefinition, type SagaState, type SagaStatus, type StepDefinition } from './state.js'

// How a saga moves through its steps: run one, retry it, compensate newest first, end. Pure.

export function onFailure(
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
    return {
      state: s,
      messages: [],
      timer: retryTimer(step, s, ctx.now + delay, ctx),
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
 * The saga stops where it stands (a cancel request, its deadline): no further retry; the step in
 * flight or waiting for its retry is undone at once, its outcome being unknown, then every done
 * step newest first; then the cancelled event with the reason.
 */
export function stopAndCompensate(def: SagaDefinition, policy: RetryPolicy, s: SagaState, reason: string, ctx: DecideContext, notices: Notice[]): SagaDecision {
  s.reason = reason
  // An awaited event has no effect to undo; a branch not done (in flight or waiting) may have one.
  const open = s.branches ? Object.keys(s.branches).filter((name) => s.branches![name]!.status !== 'done') : [s.step]
  for (const name of open) if (stepNamed(def, name) && !s.done.some((d) => d.step === name)) markUncertain(s, name)
  s.status = 'compensating'
  delete s.paused
  delete s.branches
  return compensateNext(def, policy, s, ctx, notices)
}

/**
 * Compensations run newest first, the uncertain steps (always newer than the done ones) before the
 * done ones; each waits for its confirmation before the next.
 */
export function compensateNext(def: SagaDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext, notices: Notice[]): SagaDecision {
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

/**
 * Past its budget a compensation is not resent: the saga waits, with no timer, for its
 * confirmation or for `sagactl saga retry`. It is not finished, so no final event; saga.stuck
 * says so on the log, for verify and for anyone reading it.
 */
export function becomeStuck(s: SagaState, step: StepDefinition, spent: number, ctx: DecideContext): SagaDecision {
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

export function runStep(step: StepDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext): { messages: Outgoing[]; timer: Timer } {
  return { messages: [commandOf(step, s, s.attempt, ctx)], timer: timeoutTimer(step, s, ctx.now + policyFor(step, policy).stepTimeoutMs, ctx) }
}

/** A step's command, for one attempt: the order, and the attempt. */
export function commandOf(step: StepDefinition, s: SagaState, attempt: number, ctx: DecideContext): Outgoing {
  return { topic: step.command.topic, envelope: command(step.command.type, { order_id: s.order_id, saga_id: s.saga_id, payload: { ...s.order, attempt } }, ctx.now, ctx.newId()) }
}

export function sendCompensation(step: StepDefinition, policy: RetryPolicy, s: SagaState, ctx: DecideContext): { messages: Outgoing[]; timer: Timer } {
  const done = s.done.find((d) => d.step === step.name)
  return {
    messages: [compensationMessage(step, s, { ...done?.result, attempt: s.attempt }, ctx)],
    timer: timeoutTimer(step, s, ctx.now + policyFor(step, policy).stepTimeoutMs, ctx),
  }
}

export function compensationMessage(step: StepDefinition, s: SagaState, payload: Payload, ctx: DecideContext, causation?: string): Outgoing {
  const c = step.compensation!
  return { topic: c.topic, envelope: command(c.type, { order_id: s.order_id, saga_id: s.saga_id, payload, ...(causation ? { causation_id: causation } : {}) }, ctx.now, ctx.newId()) }
}

/** The attempt (or compensation, or wait) did not answer by dueAt. */
export function timeoutTimer(step: { name: string }, s: SagaState, dueAt: number, ctx: DecideContext, attempt = s.attempt): Timer {
  return { dueAt, message: event(STEP_TIMED_OUT, { order_id: s.order_id, saga_id: s.saga_id, payload: { step: step.name, attempt } }, ctx.now, ctx.newId()) }
}

/** The next attempt of a step waiting for its retry (the one after `attempt`) is due at dueAt. */
export function retryTimer(step: { name: string }, s: SagaState, dueAt: number, ctx: DecideContext, attempt = s.attempt): Timer {
  return { dueAt, message: event(RETRY_DUE, { order_id: s.order_id, saga_id: s.saga_id, payload: { step: step.name, attempt: attempt + 1 } }, ctx.now, ctx.newId()) }
}

export function markUncertain(s: SagaState, step: string): void {
  const uncertain = s.uncertain ?? []
  if (!uncertain.includes(step)) uncertain.push(step)
  s.uncertain = uncertain
}

export function isCurrent(s: SagaState, step: string, attempt: number | undefined, status: SagaStatus): boolean {
  return s.status === status && s.step === step && (attempt === undefined || attempt === s.attempt)
}

export function stepNamed(def: SagaDefinition, name: string): StepDefinition | undefined {
  return def.steps.find((s) => s.name === name)
}

export function notice(level: Notice['level'], msg: string, s: SagaState): Notice {
  return { level, msg, fields: { order_id: s.order_id, saga_id: s.saga_id, step: s.step, attempt: s.attempt, status: s.status } }
}
