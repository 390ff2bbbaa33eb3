import { event, type CommandType, type EventType, type Message, type Outgoing, type Payload } from '../envelope.js'
import { tooOldToTrust } from '../runtime/retention.js'
import type { DecideContext, Decision, Notice, RoleHandler, StateStore } from '../runtime/role.js'
import type { ParticipantRole, SagaStep } from '../saga/define.js'
import { inventory } from '../saga/steps/inventory.js'
import { payment } from '../saga/steps/payment.js'
import type { TopicKey } from '../topics.js'

// The stub participants differ only in names and numbers, which each step module declares; the
// behaviour — idempotent effects, chaos on demand, a success rate — is shared here.

export interface ParticipantSpec {
  name: ParticipantRole
  topic: TopicKey
  act: { command: CommandType; succeeded: EventType; failed: EventType; failure: { reason: string; retryable: boolean } }
  undo: { command: CommandType; confirmed: EventType }
  effectId: string
  /** Fields of the command's payload echoed in the success reply. */
  echo: string[]
}

export interface Effect {
  effect_id: string
  status: 'held' | 'released'
  payload: Payload
  at: number
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
  /** SAGA_RETENTION: a command older than this, for an effect not (or no longer) known, is not carried out. */
  retentionMs?: number
}

export const NO_CHAOS: Chaos = { fail: 0, reject: 0 }

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
    const echoed = Object.fromEntries(spec.echo.filter((k) => k in message.payload).map((k) => [k, message.payload[k]]))
    const next: Effect = { effect_id: ctx.newId(), status: 'held', payload: echoed, at: ctx.now }
    return {
      effect: next,
      messages: [reply(spec.act.succeeded, { ...echoed, [spec.effectId]: next.effect_id })],
      notices: [{ level: 'info', msg: `${spec.act.command} done`, fields: { ...fields, [spec.effectId]: next.effect_id } }],
    }
  }

  if (message.type === spec.undo.command) {
    const { effect } = state
    if (!effect) {
      return { messages: [reply(spec.undo.confirmed, { [spec.effectId]: null, note: 'nothing to undo' })], notices: [] }
    }
    if (effect.status === 'released') {
      return { messages: [reply(spec.undo.confirmed, { ...effect.payload, [spec.effectId]: effect.effect_id, repeated: true })], notices: [] }
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
  return {
    name: spec.name,
    consumes: [spec.topic],
    handle(message: Message, store: StateStore, ctx: DecideContext): Decision {
      const state: ParticipantState = {
        effect: message.type === 'set_chaos' ? undefined : store.get<Effect>(EFFECT_SCOPE, message.order_id),
        chaos: store.get<Chaos>(CHAOS_SCOPE, spec.name) ?? NO_CHAOS,
      }
      const d = decideParticipant(spec, options, state, message, ctx)
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
    topic: step.topic.key,
    act: { command: step.command.type, succeeded: step.succeeded, failed: step.failed, failure: step.participant.failure },
    undo: { command: step.compensation.type, confirmed: step.compensation.confirmed },
    effectId: step.effectId,
    echo: step.participant.echo,
  }
}

export const inventorySpec = participantSpec(inventory)
export const paymentSpec = participantSpec(payment)
