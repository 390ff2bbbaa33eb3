import type { Message } from '../envelope.js'
import type { DecideContext } from '../runtime/role.js'
import { nothing, policyFor, retryDelay, type Branch, type RetryPolicy, type SagaDecision, type SagaDefinition, type SagaState, type StepDefinition } from './state.js'
import { advance } from './stages.js'
import { commandOf, compensateNext, markUncertain, notice, stepNamed } from './steps.js'

// The branches of a parallel stage: each runs, retries and times out on its own; the saga moves on
// when every one has succeeded, and compensates when one fails for good. Pure.

type Failure = { retryable: boolean; reason: string }
export type BranchInput = { kind: 'succeeded' | 'failed' | 'retry-due' | 'timed-out'; step: StepDefinition }

export function onBranchInput(def: SagaDefinition, policy: RetryPolicy, s: SagaState, input: BranchInput, message: Message, ctx: DecideContext, timedOut: Failure): SagaDecision {
  const b = s.branches![input.step.name]!
  const attempt = typeof message.payload.attempt === 'number' ? message.payload.attempt : undefined
  const paused = s.status === 'paused'
  switch (input.kind) {
    case 'succeeded': {
      if (b.status === 'done') return nothing()
      const { attempt: _attempt, ...result } = message.payload
      s.done.push({ step: input.step.name, result, at: ctx.now })
      b.status = 'done'
      delete b.failure
      if (paused) return { state: s, messages: [], notices: [notice('info', `${input.step.name} done while paused`, s)] }
      return allDone(s) ? moveOn(def, policy, s, message, ctx) : { state: s, messages: [], notices: [notice('info', `${input.step.name} done; waiting for ${waitingFor(s)}`, s)] }
    }
    case 'failed':
    case 'timed-out': {
      // A reply to the next attempt proves the retry ran (a state rebuilt by replay never saw its timer).
      if (input.kind === 'failed' && attempt !== undefined && b.status === 'waiting_retry' && attempt === b.attempt + 1) Object.assign(b, { status: 'running', attempt })
      if (b.status !== 'running' || (attempt !== undefined && attempt !== b.attempt) || b.failure) return nothing()
      const failure = input.kind === 'timed-out' ? timedOut : { retryable: message.payload.retryable !== false, reason: typeof message.payload.reason === 'string' ? message.payload.reason : `${input.step.name} failed` }
      if (paused) {
        b.failure = failure
        return { state: s, messages: [], notices: [notice('info', `${input.step.name} attempt ${b.attempt} failed while paused (${failure.reason}); handled on resume`, s)] }
      }
      return branchFailed(def, policy, s, input.step, failure, ctx)
    }
    case 'retry-due': {
      if (paused || b.status !== 'waiting_retry' || (attempt !== undefined && attempt !== b.attempt + 1)) return nothing()
      Object.assign(b, { status: 'running', attempt: b.attempt + 1, due_at: ctx.now + policyFor(input.step, policy).stepTimeoutMs })
      return { state: s, messages: [commandOf(input.step, s, b.attempt, ctx)], notices: [notice('info', `retrying ${input.step.name}, attempt ${b.attempt}`, s)] }
    }
    default:
      return nothing()
  }
}

/** A resume in a parallel stage: failures recorded while paused are handled now; timers that fell due fire at once. */
export function resumeBranches(def: SagaDefinition, policy: RetryPolicy, s: SagaState, message: Message, ctx: DecideContext): SagaDecision {
  s.status = 'running'
  for (const [name, b] of Object.entries(s.branches!)) {
    if (!b.failure) continue
    const failure = b.failure
    delete b.failure
    const d = branchFailed(def, policy, s, stepNamed(def, name)!, failure, ctx)
    if (d.state?.status !== 'running') return d
  }
  if (allDone(s)) return moveOn(def, policy, s, message, ctx)
  return { state: s, messages: [], notices: [] }
}

function branchFailed(def: SagaDefinition, policy: RetryPolicy, s: SagaState, step: StepDefinition, failure: Failure, ctx: DecideContext): SagaDecision {
  const b = s.branches![step.name]!
  const own = policyFor(step, policy)
  const retryable = failure.retryable && !own.notRetryable.some((r) => failure.reason.includes(r))
  if (retryable && b.attempt < own.maxAttempts) {
    const delay = retryDelay(own, ctx.random())
    Object.assign(b, { status: 'waiting_retry', due_at: ctx.now + delay })
    return { state: s, messages: [], notices: [notice('warn', `${step.name} attempt ${b.attempt} failed (${failure.reason}); retry in ${delay} ms`, s)] }
  }
  // The stage fails: every branch not done is undone at once (its outcome is unknown, the failed
  // one's too unless it declined), then the done ones, newest completion first, then the earlier steps.
  s.status = 'compensating'
  s.reason = retryable ? `${failure.reason} (after ${b.attempt} attempts)` : failure.reason
  for (const [name, other] of Object.entries(s.branches!)) if (other.status !== 'done' && (name !== step.name || failure.retryable)) markUncertain(s, name)
  delete s.branches
  return compensateNext(def, policy, s, ctx, [notice('warn', `${step.name} failed for good: ${s.reason}; compensating the parallel stage and the steps before it`, s)])
}

function moveOn(def: SagaDefinition, policy: RetryPolicy, s: SagaState, message: Message, ctx: DecideContext): SagaDecision {
  delete s.branches
  return advance(def, policy, s, s.step, message.message_id, ctx)
}

const allDone = (s: SagaState): boolean => Object.values(s.branches ?? {}).every((b: Branch) => b.status === 'done')
const waitingFor = (s: SagaState): string =>
  Object.entries(s.branches ?? {})
    .filter(([, b]) => b.status !== 'done')
    .map(([name]) => name)
    .join(', ')
