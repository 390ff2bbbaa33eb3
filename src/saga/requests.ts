import { event, type Message, type Outgoing, type Payload } from '../envelope.js'
import type { DecideContext } from '../runtime/role.js'
import {
  CANCEL_ACCEPTED,
  CANCEL_IGNORED,
  DEADLINE_PASSED_REASON,
  PAUSE_ACCEPTED,
  PAUSE_IGNORED,
  RESUME_ACCEPTED,
  RESUME_IGNORED,
  RETRY_ACCEPTED,
  RETRY_REFUSED,
  cancelledByRequest,
} from './messages.js'
import { nothing, policyFor, unreachable, type Pause, type Request, type RetryPolicy, type SagaDecision, type SagaDefinition, type SagaState, type Stage } from './state.js'
import { resumeBranches } from './parallel.js'
import { advance, stageNamed } from './stages.js'
import { notice, onFailure, retryTimer, sendCompensation, stepNamed, stopAndCompensate, timeoutTimer } from './steps.js'

// What the saga does with a request from outside (retry, cancel, pause, resume) and with its
// deadline. Every request gets an answer on the control topic, caused by it, that says what was
// done or why nothing was.

function requestOf(message: Message, ctx: DecideContext): Request {
  const given = message.payload.reason
  const requestedBy = message.payload.requested_by
  return {
    reason: typeof given === 'string' && given.trim() !== '' ? given.trim() : 'no reason given',
    requested_by: typeof requestedBy === 'string' && requestedBy !== '' ? requestedBy : 'unknown',
    at: ctx.now,
    request_id: message.message_id,
  }
}

function answer(type: string, message: Message, s: SagaState | undefined, extra: Payload, ctx: DecideContext): Outgoing {
  const payload = { ...(s ? { status: s.status, step: s.step, attempt: s.attempt } : {}), ...extra }
  return { topic: 'control', envelope: event(type, { order_id: message.order_id, saga_id: s?.saga_id ?? message.saga_id, payload, causation_id: message.message_id }, ctx.now, ctx.newId()) }
}

function ignored(type: string, what: string, message: Message, current: SagaState | undefined, why: string, ctx: DecideContext): SagaDecision {
  const r = requestOf(message, ctx)
  return {
    messages: [answer(type, message, current, { reason: why }, ctx)],
    notices: [{ level: 'info', msg: `${what} request ignored: ${why}`, fields: { order_id: message.order_id, requested_by: r.requested_by, request_id: r.request_id } }],
  }
}

const NO_SAGA = 'no saga for this order at the orchestrator'

/**
 * Only a stuck saga is resumed: its pending compensation is sent again with a fresh budget. Any
 * other state is left alone.
 */
export function onRetryRequested(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  const step = current && stepNamed(def, current.step)
  if (!current || current.status !== 'stuck' || !step?.compensation) {
    const why = current ? `the saga is ${current.status}, not stuck; nothing to retry` : NO_SAGA
    return { messages: [answer(RETRY_REFUSED, message, current, { reason: why }, ctx)], notices: [{ level: 'info', msg: `retry request ignored: ${why}`, fields: { order_id: message.order_id } }] }
  }
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now, status: 'compensating' }
  delete s.stuck_reason
  s.attempt += 1
  s.budget_from = s.attempt
  const sent = sendCompensation(step, policy, s, ctx)
  const attempts = policyFor(step, policy).maxCompensationAttempts
  return {
    state: s,
    messages: [...sent.messages, answer(RETRY_ACCEPTED, message, s, { attempts }, ctx)],
    timer: sent.timer,
    notices: [notice('warn', `retry requested: resending compensation of ${step.name}, up to ${attempts} more attempt(s)`, s)],
  }
}

/** Why a running, waiting or paused saga cannot be stopped now, or undefined when it can. */
function whyNotStoppable(current: SagaState): string | undefined {
  switch (current.status) {
    case 'completed':
    case 'cancelled':
      return `the saga already ended: ${current.status}; nothing changed`
    case 'compensating':
    case 'stuck':
      return `the saga is already ${current.status} (${current.reason ?? 'no reason'}); it ends cancelled`
    case 'running':
    case 'waiting_retry':
    case 'paused':
      return undefined
    default:
      return unreachable(current.status)
  }
}

/**
 * A cancel request stops the saga where it stands, paused or not, and compensates it. A saga that
 * already ended, or is already being compensated, is left as it is.
 */
export function onCancelRequested(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  if (!current) return ignored(CANCEL_IGNORED, 'cancel', message, current, NO_SAGA, ctx)
  if (current.cancel_requested) return ignored(CANCEL_IGNORED, 'cancel', message, current, `already cancelled by request (${current.cancel_requested.request_id}); the saga is ${current.status}`, ctx)
  const why = whyNotStoppable(current)
  if (why) return ignored(CANCEL_IGNORED, 'cancel', message, current, why, ctx)
  const r = requestOf(message, ctx)
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now, cancel_requested: r }
  const d = stopAndCompensate(def, policy, s, cancelledByRequest(r.reason), ctx, [notice('warn', `cancel requested by ${r.requested_by}: ${r.reason}; compensating`, s)])
  return { ...d, messages: [...d.messages, answer(CANCEL_ACCEPTED, message, d.state, { reason: s.reason ?? '' }, ctx)] }
}

/** The deadline's timer, read back from the log: the saga is cancelled as by a request. */
export function onDeadlinePassed(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  if (!current || current.deadline_at === undefined || message.payload.deadline_at !== current.deadline_at || whyNotStoppable(current)) return nothing()
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now }
  return stopAndCompensate(def, policy, s, DEADLINE_PASSED_REASON, ctx, [notice('warn', `deadline passed (${new Date(current.deadline_at).toISOString()}); compensating`, s)])
}

/**
 * A pause holds a running or waiting saga: its step's timer is put aside (the deadline still
 * runs), no command goes out, and replies are recorded for the resume. A compensation is not
 * paused: it is what makes the saga safe to leave.
 */
export function onPauseRequested(current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  if (!current) return ignored(PAUSE_IGNORED, 'pause', message, current, NO_SAGA, ctx)
  if (current.status === 'paused') return ignored(PAUSE_IGNORED, 'pause', message, current, `already paused by ${current.paused?.requested_by ?? 'unknown'} (${current.paused?.request_id ?? '?'})`, ctx)
  if (current.status !== 'running' && current.status !== 'waiting_retry') {
    const why = whyNotStoppable(current) ?? `the saga is ${current.status}`
    return ignored(PAUSE_IGNORED, 'pause', message, current, `${why}; a compensation is not paused`, ctx)
  }
  const r = requestOf(message, ctx)
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now, status: 'paused', paused: { ...r, was: current.status } }
  return {
    state: s,
    messages: [answer(PAUSE_ACCEPTED, message, s, { reason: r.reason }, ctx)],
    timer: null,
    notices: [notice('warn', `paused by ${r.requested_by}: ${r.reason}`, s)],
  }
}

/**
 * A resume carries on from where the saga stands: a reply recorded while paused is acted on now,
 * and a timer that fell due while paused fires at once (a step whose timeout passed is handled as
 * a timeout, through the log like every timer).
 */
export function onResumeRequested(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, message: Message, ctx: DecideContext): SagaDecision {
  if (!current) return ignored(RESUME_IGNORED, 'resume', message, current, NO_SAGA, ctx)
  const pause = current.paused
  const stage = stageNamed(def, current.step)
  if (current.status !== 'paused' || !pause || !stage) return ignored(RESUME_IGNORED, 'resume', message, current, `the saga is ${current.status}, not paused; nothing changed`, ctx)
  const r = requestOf(message, ctx)
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now, status: pause.was, resumed: r }
  delete s.paused
  const notices = [notice('info', `resumed by ${r.requested_by} after a pause of ${ctx.now - pause.at} ms`, s)]
  const d = resumed(def, policy, s, stage, pause, message, ctx)
  return { ...d, messages: [...d.messages, answer(RESUME_ACCEPTED, message, d.state, {}, ctx)], notices: [...notices, ...d.notices] }
}

function resumed(def: SagaDefinition, policy: RetryPolicy, s: SagaState, stage: Stage, pause: Pause, message: Message, ctx: DecideContext): SagaDecision {
  if (stage.kind === 'parallel') return resumeBranches(def, policy, s, message, ctx)
  if (s.done.some((d) => d.step === s.step)) return advance(def, policy, s, s.step, message.message_id, ctx)
  if (pause.failure && stage.kind === 'step') return onFailure(def, policy, s, stage.step, pause.failure, ctx)
  const dueAt = Math.max(ctx.now, s.due_at ?? ctx.now)
  const timer = pause.was === 'waiting_retry' ? retryTimer({ name: s.step }, s, dueAt, ctx) : timeoutTimer({ name: s.step }, s, dueAt, ctx)
  return { state: s, messages: [], timer, notices: [] }
}
