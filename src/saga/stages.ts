import { event, type Message, type Payload } from '../envelope.js'
import type { DecideContext, Timer } from '../runtime/role.js'
import { isFinished, nothing, policyFor, stageName, stagesOf, unreachable, type AwaitDefinition, type RetryPolicy, type SagaDecision, type SagaDefinition, type SagaState, type Stage } from './state.js'
import { commandOf, compensateNext, notice, retryTimer, runStep, timeoutTimer } from './steps.js'

// How a saga moves from one stage of its flow to the next: a step, steps side by side, or a wait
// for an outside event. Pure.

export function stageNamed(def: SagaDefinition, name: string): Stage | undefined {
  return stagesOf(def).find((stage) => stageName(stage) === name)
}

/** The saga moves past the stage named: into the next one, or to the completed event. */
export function advance(def: SagaDefinition, policy: RetryPolicy, s: SagaState, from: string, causationId: string, ctx: DecideContext): SagaDecision {
  const stages = stagesOf(def)
  const at = stages.findIndex((stage) => stageName(stage) === from)
  if (at === -1) return { state: s, messages: [], notices: [notice('error', `the saga's stage ${from} is not in its definition; it cannot move on`, s)] }
  const next = stages[at + 1]
  if (next) return enter(def, policy, s, next, causationId, ctx)
  s.status = 'completed'
  s.finished_at = ctx.now
  const results = Object.assign({}, ...s.done.map((d) => d.result)) as Payload
  return {
    state: s,
    messages: [{ topic: 'orderEvents', envelope: event(def.completed, { order_id: s.order_id, saga_id: s.saga_id, causation_id: causationId, payload: results }, ctx.now, ctx.newId()) }],
    timer: null,
    notices: [notice('info', 'saga completed', s)],
  }
}

export function enter(def: SagaDefinition, policy: RetryPolicy, s: SagaState, stage: Stage, causationId: string, ctx: DecideContext): SagaDecision {
  s.status = 'running'
  s.step = stageName(stage)
  s.attempt = 1
  switch (stage.kind) {
    case 'step':
      return { state: s, ...runStep(stage.step, policy, s, ctx), notices: [] }
    case 'parallel': {
      // Every branch's command goes out together; each keeps its own attempts and timers.
      s.branches = {}
      const messages = stage.branches.map((b) => {
        s.branches![b.name] = { status: 'running', attempt: 1, due_at: ctx.now + policyFor(b, policy).stepTimeoutMs }
        return commandOf(b, s, 1, ctx)
      })
      return { state: s, messages, timer: branchTimer(s, ctx), notices: [notice('info', `running ${stage.branches.map((b) => b.name).join(' ∥ ')}`, s)] }
    }
    case 'await': {
      const early = s.received?.[stage.wait.event]
      if (!early) return { state: s, messages: [], timer: timeoutTimer(stage.wait, s, ctx.now + stage.wait.timeoutMs, ctx), notices: [notice('info', `waiting for ${stage.wait.event}`, s)] }
      delete s.received![stage.wait.event]
      s.done.push({ step: stage.wait.name, result: early.payload, at: ctx.now })
      const d = advance(def, policy, s, stage.wait.name, early.message_id, ctx)
      return { ...d, notices: [notice('info', `${stage.wait.event} had come already (${early.message_id}); moving on`, s), ...d.notices] }
    }
    default:
      return unreachable(stage)
  }
}

/** The earliest timer of the branches not done: a timeout for one in flight, a retry for one waiting. */
export function branchTimer(s: SagaState, ctx: DecideContext): Timer | null {
  let earliest: [string, NonNullable<SagaState['branches']>[string]] | undefined
  for (const [name, b] of Object.entries(s.branches ?? {})) if (b.status !== 'done' && (!earliest || b.due_at < earliest[1].due_at)) earliest = [name, b]
  if (!earliest) return null
  const [name, b] = earliest
  return b.status === 'running' ? timeoutTimer({ name }, s, b.due_at, ctx, b.attempt) : retryTimer({ name }, s, b.due_at, ctx, b.attempt)
}

/**
 * An awaited event: it moves a saga waiting for it on, is kept for a saga that has not reached
 * its step yet, and changes nothing (said so) for a saga that ended or moved past it.
 */
export function onAwaited(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, wait: AwaitDefinition, message: Message, ctx: DecideContext): SagaDecision {
  const said = (msg: string): SagaDecision => ({ ...nothing(), notices: [{ level: 'info', msg, fields: { order_id: message.order_id, event: message.type, message_id: message.message_id } }] })
  if (!current) return said(`${message.type} for an order with no saga here; nothing changed`)
  if (isFinished(current)) return said(`${message.type} after the saga ended (${current.status}); nothing changed`)
  if (current.done.some((d) => d.step === wait.name) || current.received?.[wait.event]) return said(`${message.type} came already; this one changes nothing`)
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now }
  const { attempt: _attempt, ...payload } = message.payload
  if (s.step === wait.name && s.status === 'running') {
    s.done.push({ step: wait.name, result: payload, at: ctx.now })
    const d = advance(def, policy, s, wait.name, message.message_id, ctx)
    return { ...d, notices: [notice('info', `${message.type} came`, s), ...d.notices] }
  }
  if (s.step === wait.name && s.status === 'paused') {
    s.done.push({ step: wait.name, result: payload, at: ctx.now })
    return { state: s, messages: [], notices: [notice('info', `${message.type} came while paused; the saga moves on when resumed`, s)] }
  }
  const stages = stagesOf(def)
  const ahead = stages.findIndex((stage) => stageName(stage) === wait.name) > stages.findIndex((stage) => stageName(stage) === s.step)
  if (ahead && (s.status === 'running' || s.status === 'waiting_retry' || s.status === 'paused')) {
    s.received = { ...s.received, [wait.event]: { payload, message_id: message.message_id, at: ctx.now } }
    return { state: s, messages: [], notices: [notice('info', `${message.type} came before its step; kept for ${wait.name}`, s)] }
  }
  return said(`${message.type} for a saga that is ${current.status} at ${current.step}, past ${wait.name}; nothing changed`)
}

/** The wait's time limit passed: move on without the event, or compensate and cancel. */
export function onAwaitTimedOut(def: SagaDefinition, policy: RetryPolicy, current: SagaState | undefined, wait: AwaitDefinition, message: Message, ctx: DecideContext): SagaDecision {
  const attempt = message.payload.attempt
  if (!current || current.step !== wait.name || current.status !== 'running' || (typeof attempt === 'number' && attempt !== current.attempt)) return nothing()
  const s: SagaState = { ...structuredClone(current), updated_at: ctx.now }
  const why = `no ${wait.event} within ${wait.timeoutMs} ms`
  if (wait.onTimeout === 'continue') {
    s.done.push({ step: wait.name, result: {}, at: ctx.now })
    const d = advance(def, policy, s, wait.name, message.message_id, ctx)
    return { ...d, notices: [notice('warn', `${why}; moving on without it`, s), ...d.notices] }
  }
  s.status = 'compensating'
  s.reason = why
  return compensateNext(def, policy, s, ctx, [notice('warn', `${why}; compensating`, s)])
}
