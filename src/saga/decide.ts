import { event, type Message } from '../envelope.js'
import type { DecideContext, Timer } from '../runtime/role.js'
import { CANCEL_REQUESTED, DEADLINE_PASSED, PAUSE_REQUESTED, RESUME_REQUESTED, RETRY_DUE, RETRY_REQUESTED, SAGA_STUCK, STEP_TIMED_OUT } from './messages.js'
import { onCancelRequested, onDeadlinePassed, onPauseRequested, onResumeRequested, onRetryRequested } from './requests.js'
import { onBranchInput } from './parallel.js'
import { advance, branchTimer, enter, onAwaited, onAwaitTimedOut } from './stages.js'
import { isFinished, nothing, policyFor, stagesOf, unreachable, type AwaitDefinition, type RetryPolicy, type SagaDecision, type SagaDefinition, type SagaState, type StepDefinition } from './state.js'
import { becomeStuck, compensateNext, compensationMessage, isCurrent, notice, onFailure, runStep, sendCompensation } from './steps.js'

export * from './messages.js'
export * from './state.js'

// A small saga engine: a definition describes steps and compensations; `decide` is the pure
// function that moves one saga forward. The engine never sends anything itself.

/**
 * What a message is to a saga, decided once from the definition: a closed set, so every kind is
 * handled by the one `switch` in `decide` and the compiler says when a kind is added and not handled.
 */
export type SagaInput =
  | { kind: 'started' }
  | { kind: 'finished' }
  | { kind: 'retry-requested' }
  | { kind: 'cancel-requested' }
  | { kind: 'pause-requested' }
  | { kind: 'resume-requested' }
  | { kind: 'deadline-passed' }
  | { kind: 'stuck' }
  | { kind: 'succeeded'; step: StepDefinition }
  | { kind: 'failed'; step: StepDefinition }
  | { kind: 'compensated'; step: StepDefinition }
  | { kind: 'retry-due'; step: StepDefinition | undefined }
  | { kind: 'timed-out'; step: StepDefinition | undefined }
  | { kind: 'awaited'; wait: AwaitDefinition }
  | { kind: 'await-timed-out'; wait: AwaitDefinition }
  | { kind: 'unknown' }

export function classify(def: SagaDefinition, message: Message): SagaInput {
  const type = message.type
  if (type === def.started) return { kind: 'started' }
  if (type === def.completed || type === def.cancelled) return { kind: 'finished' }
  if (type === RETRY_REQUESTED) return { kind: 'retry-requested' }
  if (type === CANCEL_REQUESTED) return { kind: 'cancel-requested' }
  if (type === PAUSE_REQUESTED) return { kind: 'pause-requested' }
  if (type === RESUME_REQUESTED) return { kind: 'resume-requested' }
  if (type === DEADLINE_PASSED) return { kind: 'deadline-passed' }
  if (type === SAGA_STUCK) return { kind: 'stuck' }
  const succeeded = def.steps.find((s) => s.succeeded === type)
  if (succeeded) return { kind: 'succeeded', step: succeeded }
  const failed = def.steps.find((s) => s.failed === type)
  if (failed) return { kind: 'failed', step: failed }
  const confirmed = def.steps.find((s) => s.compensation?.confirmed === type)
  if (confirmed) return { kind: 'compensated', step: confirmed }
  const waits = stagesOf(def).flatMap((stage) => (stage.kind === 'await' ? [stage.wait] : []))
  const awaited = waits.find((w) => w.event === type)
  if (awaited) return { kind: 'awaited', wait: awaited }
  const named = def.steps.find((x) => x.name === message.payload.step)
  if (type === RETRY_DUE) return { kind: 'retry-due', step: named }
  const waitNamed = waits.find((w) => w.name === message.payload.step)
  if (type === STEP_TIMED_OUT && waitNamed) return { kind: 'await-timed-out', wait: waitNamed }
  if (type === STEP_TIMED_OUT) return { kind: 'timed-out', step: named }
  return { kind: 'unknown' }
}

export function decide(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  return withTimer(decideInput(def, policy, current, message, ctx), ctx)
}

function decideInput(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
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
    case 'pause-requested':
      return onPauseRequested(current, message, ctx)
    case 'resume-requested':
      return onResumeRequested(def, policy, current, message, ctx)
    case 'deadline-passed':
      return onDeadlinePassed(def, policy, current, message, ctx)
    case 'stuck':
      return onStuckEvent(current, message, ctx)
    case 'awaited':
      return onAwaited(def, policy, current, input.wait, message, ctx)
    case 'await-timed-out':
      return onAwaitTimedOut(def, policy, current, input.wait, message, ctx)
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

/**
 * A saga has one pending timer (the runtime keeps one per order): the earliest of its step's own
 * (kept in due_at for a resume), its parallel branches' and, while it can still be cancelled, its
 * deadline's. The others are armed again when it has fired.
 */
function withTimer(decision: SagaDecision, ctx: DecideContext): SagaDecision {
  const s = decision.state
  if (!s) return decision
  const d = s.branches && s.status !== 'compensating' ? { ...decision, timer: s.status === 'running' ? branchTimer(s, ctx) : null } : decision
  if (d.timer) s.due_at = d.timer.dueAt
  else if (d.timer === null && s.status !== 'paused') delete s.due_at
  const open = s.status === 'running' || s.status === 'waiting_retry' || s.status === 'paused'
  if (s.deadline_at === undefined || !open || d.timer === undefined || (d.timer && d.timer.dueAt <= s.deadline_at)) return d
  const timer: Timer = { dueAt: s.deadline_at, message: event(DEADLINE_PASSED, { order_id: s.order_id, saga_id: s.saga_id, payload: { deadline_at: s.deadline_at } }, ctx.now, ctx.newId()) }
  return { ...d, timer }
}

type StepInput = Extract<SagaInput, { kind: 'succeeded' | 'failed' | 'compensated' | 'retry-due' | 'timed-out' }>

function onStepInput(def: SagaDefinition, policy: RetryPolicy, current: SagaState, input: StepInput, message: Message, ctx: DecideContext): SagaDecision {
  const s: SagaState = structuredClone(current)
  s.updated_at = ctx.now
  const attempt = typeof message.payload.attempt === 'number' ? message.payload.attempt : undefined
  const step = input.step
  if (step && s.branches?.[step.name] && input.kind !== 'compensated') return onBranchInput(def, policy, s, { kind: input.kind, step }, message, ctx, timedOut(step, policy))
  switch (input.kind) {
    case 'succeeded':
      return onSucceeded(def, policy, s, input.step, message, ctx)
    case 'failed': {
      const retryable = message.payload.retryable !== false
      const reason = typeof message.payload.reason === 'string' ? message.payload.reason : `${input.step.name} failed`
      if (isPausedAt(s, input.step.name, attempt)) return recordWhilePaused(s, { retryable, reason }, ctx)
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
      if (isPausedAt(s, step.name, attempt)) return recordWhilePaused(s, timedOut(step, policy), ctx)
      if (isCurrent(s, step.name, attempt, 'running')) return onFailure(def, policy, s, step, timedOut(step, policy), ctx)
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

const timedOut = (step: StepDefinition, policy: RetryPolicy) => ({ retryable: true, reason: `no reply to ${step.command.type} within ${policyFor(step, policy).stepTimeoutMs} ms` })

/** The current attempt of a saga paused while it ran: its failure waits for the resume. */
function isPausedAt(s: SagaState, step: string, attempt: number | undefined): boolean {
  return s.status === 'paused' && s.paused?.was === 'running' && s.step === step && (attempt === undefined || attempt === s.attempt) && !s.paused.failure
}

function recordWhilePaused(s: SagaState, failure: { retryable: boolean; reason: string }, ctx: DecideContext): SagaDecision {
  s.paused = { ...s.paused!, failure }
  s.updated_at = ctx.now
  return { state: s, messages: [], notices: [notice('info', `${s.step} attempt ${s.attempt} failed while paused (${failure.reason}); handled on resume`, s)] }
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
  delete s.paused
  if (typeof message.payload.reason === 'string') s.reason = message.payload.reason
  return { state: s, messages: [], timer: null, notices: [notice('info', `saga settled by ${message.type} from the log`, s)] }
}

/** The definition's deadline, or the order's earlier one (deadline_ms in its payload), from the start. */
function deadlineOf(def: SagaDefinition, message: Message): number | undefined {
  const asked = message.payload.deadline_ms
  const ms = [def.deadlineMs, typeof asked === 'number' && Number.isInteger(asked) && asked > 0 ? asked : undefined].filter((x): x is number => x !== undefined)
  return ms.length > 0 ? Math.min(...ms) : undefined
}

function start(def: SagaDefinition, policy: RetryPolicy, message: Message, ctx: DecideContext): SagaDecision {
  const first = stagesOf(def)[0]
  if (!first) throw new Error('a saga needs at least one step')
  const deadline = deadlineOf(def, message)
  const s: SagaState = {
    order_id: message.order_id,
    saga_id: message.saga_id,
    order: message.payload,
    status: 'running',
    step: '',
    attempt: 1,
    done: [],
    compensated: [],
    ...(deadline !== undefined ? { deadline_at: ctx.now + deadline } : {}),
    started_at: ctx.now,
    updated_at: ctx.now,
  }
  const d = enter(def, policy, s, first, message.message_id, ctx)
  return { ...d, notices: [notice('info', 'saga started', s), ...d.notices] }
}

function onSucceeded(def: SagaDefinition, policy: RetryPolicy, s: SagaState, step: StepDefinition, message: Message, ctx: DecideContext): SagaDecision {
  if (s.done.some((d) => d.step === step.name)) return nothing()
  const { attempt: _attempt, ...result } = message.payload
  s.done.push({ step: step.name, result, at: ctx.now })

  if ((s.status === 'running' || s.status === 'waiting_retry') && s.step === step.name) return advance(def, policy, s, step.name, message.message_id, ctx)
  // Recorded; the saga moves past the step when it is resumed.
  if (s.status === 'paused' && s.step === step.name) return { state: s, messages: [], notices: [notice('info', `${step.name} done while paused; the saga moves on when resumed`, s)] }
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
