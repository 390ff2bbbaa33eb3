import type { Payload } from '../envelope.js'
import type { SagaDefinition, StepDefinition } from '../services/orchestrator/saga.js'
import type { TopicKey } from '../topics.js'

// A saga step is one module: its messages, its topic, its participant, what `verify` checks of it
// and how the notifier tells it. Everything else (envelope type lists, topics, changelogs, roles,
// chaos targets, bench hops, verify) is derived from the saga definition in ./derive.ts.

/**
 * The participant roles the type checker knows. Each step module adds its own role here by
 * declaration merging, so its topic key and role name type-check without an edit anywhere else.
 */
export interface ParticipantRoles {}
export type ParticipantRole = keyof ParticipantRoles & string

/** One role per process; a saga's participants are its steps' roles (roleNames() in ./derive.ts lists them). */
export type RoleName = 'api' | 'orchestrator' | 'notifier' | ParticipantRole

export interface Failure {
  reason: string
  retryable: boolean
}

/**
 * What `verify` says about a step. The kinds are a closed set that scripts match on, so an
 * existing kind is never renamed; the rules and details are for people.
 */
export interface StepChecks {
  /** Two different effect ids for one saga. */
  double: { kind: string; rule: string; detail: string }
  /** A completed saga without this step's effect standing. */
  completedWithout: { kind: string; rule: string; never: string; undone: string }
  /** A cancelled saga with this step's effect still standing. */
  cancelledStanding: { rule: string; detail: string }
  /** One effect undone twice, e.g. "reservation {id} cancelled {n} times". */
  undoneTwice: string
  /** This step's command or effect with no effect of the step before it; every step but the first has it. */
  withoutPrevious?: { kind: string; rule: string; taken: string; sent: string }
}

/** The notifier's words for a step; the generic part (attempt, repeated, retryable) is added. */
export interface StepLines {
  succeeded(payload: Payload): string
  /** "reserve" → "reserve FAILED: out of stock …" */
  failed: string
  confirmed(payload: Payload): string
}

export interface StepModuleInput {
  role: ParticipantRole
  /** The step's name in saga state and timelines. Persisted: never rename it. Defaults to the command. */
  name?: string
  topic: { name: string; partitions: number }
  command: string
  succeeded: string
  failed: string
  compensation: { command: string; confirmed: string }
  /** The payload field of the success reply that identifies the effect, e.g. reservation_id. */
  effectId: string
  participant: {
    /** Fields of the command's payload echoed in the success reply. */
    echo: string[]
    /** What the stub says when it fails on its own (not by chaos). */
    failure: Failure
    successRate: { env: string; default: number }
  }
  verify: StepChecks
  notifier: StepLines
}

/** A step module: the engine's view of the step (StepDefinition) plus everything derived from it. */
export interface SagaStep extends StepDefinition {
  role: ParticipantRole
  topic: { key: TopicKey; name: string; partitions: number }
  compensation: { type: string; topic: TopicKey; confirmed: string }
  participant: StepModuleInput['participant']
  verify: StepChecks
  notifier: StepLines
}

export interface Saga extends SagaDefinition {
  steps: SagaStep[]
}

export function commandTopicKey(role: ParticipantRole): TopicKey {
  return `${role}Commands`
}

export function defineStep(input: StepModuleInput): SagaStep {
  const topic = commandTopicKey(input.role)
  return {
    name: input.name ?? input.command,
    role: input.role,
    topic: { key: topic, ...input.topic },
    command: { type: input.command, topic },
    succeeded: input.succeeded,
    failed: input.failed,
    effectId: input.effectId,
    compensation: { type: input.compensation.command, topic, confirmed: input.compensation.confirmed },
    participant: input.participant,
    verify: input.verify,
    notifier: input.notifier,
  }
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
 * Events of the orchestrator about the saga as a whole, on order.events, for every saga whatever
 * its steps: a step module neither declares nor may take them.
 */
export const SAGA_LEVEL_EVENTS = [SAGA_STUCK, RETRY_REQUESTED, RETRY_DUE, STEP_TIMED_OUT] as const

/** Names the saga itself uses, that no step may take. */
const RESERVED = { topics: ['order.events', 'dlq', 'sagactl.control'], roles: ['api', 'orchestrator', 'notifier'], messages: ['set_chaos', ...SAGA_LEVEL_EVENTS] }

/**
 * The saga, checked: a name used twice would route one step's replies to another, and nothing
 * downstream would say so.
 */
export function defineSaga(saga: Saga): Saga {
  const problems: string[] = []
  if (saga.steps.length === 0) problems.push('a saga needs at least one step')
  const taken = (what: string, values: string[], reserved: string[] = []) => {
    const seen = new Set(reserved)
    for (const v of values) {
      if (seen.has(v)) problems.push(`${what} "${v}" is used twice`)
      seen.add(v)
    }
  }
  taken('role', saga.steps.map((s) => s.role), RESERVED.roles)
  taken('step name', saga.steps.map((s) => s.name))
  taken('topic', saga.steps.map((s) => s.topic.name), RESERVED.topics)
  taken('message type', [saga.started, saga.completed, saga.cancelled, ...saga.steps.flatMap((s) => [s.command.type, s.succeeded, s.failed, s.compensation.type, s.compensation.confirmed])], RESERVED.messages)
  taken('breach kind', saga.steps.flatMap((s) => [s.verify.double.kind, s.verify.completedWithout.kind, ...(s.verify.withoutPrevious ? [s.verify.withoutPrevious.kind] : [])]))
  saga.steps.forEach((s, i) => {
    if (!Number.isInteger(s.topic.partitions) || s.topic.partitions < 1) problems.push(`step ${s.name}: topic ${s.topic.name} needs at least one partition`)
    if (i > 0 && !s.verify.withoutPrevious) problems.push(`step ${s.name} follows another step, so its verify checks need withoutPrevious`)
    if (s.topic.key !== commandTopicKey(s.role) || s.command.topic !== s.topic.key || s.compensation.topic !== s.topic.key) problems.push(`step ${s.name}: build it with defineStep`)
  })
  if (problems.length > 0) throw new Error(`invalid saga definition: ${problems.join('; ')}`)
  return saga
}
