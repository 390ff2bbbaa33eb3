import type { Payload } from '../envelope.js'
import type { AwaitDefinition, SagaDefinition, Stage, StepDefinition, StepRetryPolicy } from './decide.js'
import type { ParticipantRole, TopicKey } from '../names.js'

// A saga step is one module: its messages, its topic, its participant, what `verify` checks of it
// and how the notifier tells it. Everything else (envelope type lists, topics, changelogs, roles,
// chaos targets, bench hops, verify) is derived from the saga definition in ./derive.ts.

export type { ParticipantRoles, ParticipantRole, RoleName, TopicKey } from '../names.js'

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

/** The command a step's code is given: its type, ids and payload (the order, the attempt, an undo's effect). */
export interface StepCommand {
  type: string
  order_id: string
  saga_id: string
  payload: Payload
}

export interface StepLog {
  info(fields: Record<string, unknown>, msg: string): void
  warn(fields: Record<string, unknown>, msg: string): void
  error(fields: Record<string, unknown>, msg: string): void
}

export interface StepContext {
  /**
   * Derived from the saga and the step (undo has its own): the same on every attempt and every
   * redelivery of this step of this saga. Pass it to the outside API, which does the work once.
   */
  idempotencyKey: string
  attempt: number
  now: number
  log: StepLog
  /** Aborted when the step's timeout passes: the orchestrator has stopped waiting. */
  signal: AbortSignal
}

/**
 * What a step's code answers: done (with the payload of the success reply), or declined for good
 * (no retry). A throw is a transient failure: retried under the step's policy.
 */
export type StepResult = { ok: true; payload?: Payload } | { declined: string }

export type StepAction = (command: StepCommand, ctx: StepContext) => StepResult | Promise<StepResult>

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
  /** The participant's work. Absent: the stub (a success rate and chaos) stands in for it. */
  act?: StepAction
  /** Undoes what act did; given the success reply's payload. Absent with act: nothing to undo outside. */
  undo?: StepAction
  /** This step's retry policy, over the saga's (the environment's). */
  retry?: StepRetryPolicy
  /** The stub's numbers. Defaults: echo nothing, fail retryably as "<command> failed", <ROLE>_SUCCESS_RATE (default 1). */
  participant?: {
    /** Fields of the command's payload echoed in the success reply. */
    echo: string[]
    /** What the stub says when it fails on its own (not by chaos). */
    failure: Failure
    successRate: { env: string; default: number }
  }
  /** What verify calls a breach of this step. Defaults are derived from the step's names. */
  verify?: StepChecks
  /** The notifier's words. Defaults are derived from the step's names. */
  notifier?: StepLines
}

/** A step module: the engine's view of the step (StepDefinition) plus everything derived from it. */
export interface SagaStep extends StepDefinition {
  role: ParticipantRole
  topic: { key: TopicKey; name: string; partitions: number }
  compensation: { type: string; topic: TopicKey; confirmed: string }
  participant: NonNullable<StepModuleInput['participant']>
  verify: StepChecks
  notifier: StepLines
  act?: StepAction
  undo?: StepAction
}

export interface Saga extends SagaDefinition {
  /** Every step with a participant, in the order of the flow (a parallel stage's branches in their order). */
  steps: SagaStep[]
  /** The version's name, recorded by each saga it starts; its definition hash when absent. */
  version?: string
  /**
   * A deployment of several versions (defineVersions), oldest first: each saga ends under the
   * version it started under, and new sagas start on the last. Its steps are every version's.
   */
  versions?: Saga[]
  /** order.events, which every role reads: its partition count bounds the instances of a role that share work. Default 8. */
  events?: { partitions: number }
}

/** Steps run side by side: `parallel(reserve, authorise)`. Named after its branches unless named. */
export interface ParallelStage {
  parallel: SagaStep[]
  name?: string
}

/** A step that waits for an outside event keyed by the order: `awaitEvent({ name, event, timeoutMs, onTimeout })`. */
export interface AwaitStage {
  await: AwaitDefinition
}

/** What a saga module writes: its steps in order, any of them a parallel stage or a wait. */
export interface SagaModuleInput extends Omit<Saga, 'steps' | 'stages'> {
  steps: (SagaStep | ParallelStage | AwaitStage)[]
}

export function parallel(...branches: SagaStep[]): ParallelStage {
  return { parallel: branches }
}

export function awaitEvent(input: { name: string; event: string; timeoutMs: number; onTimeout?: 'cancel' | 'continue' }): AwaitStage {
  return { await: { name: input.name, event: input.event, timeoutMs: input.timeoutMs, onTimeout: input.onTimeout ?? 'cancel' } }
}

/** The flow, read off a module's steps; undefined when it is each step in turn. */
function flowOf(input: SagaModuleInput): { steps: SagaStep[]; stages?: Stage[] } {
  const listed = input.steps as unknown[]
  if (!listed.some((s) => s !== null && typeof s === 'object' && ('parallel' in s || 'await' in s))) return { steps: input.steps as SagaStep[] }
  const stages: Stage[] = listed.map((s) => {
    const entry = s as Partial<ParallelStage & AwaitStage> & StepDefinition
    if (entry?.parallel) return { kind: 'parallel', name: entry.name ?? entry.parallel.map((b) => b?.name).join('+'), branches: entry.parallel }
    if (entry?.await) return { kind: 'await', wait: entry.await }
    return { kind: 'step', step: entry }
  })
  const steps = stages.flatMap((st) => (st.kind === 'step' ? [st.step] : st.kind === 'parallel' ? st.branches : [])) as SagaStep[]
  return { steps, stages }
}

export function commandTopicKey(role: ParticipantRole): TopicKey {
  return `${role}Commands`
}

export function defineStep(input: StepModuleInput): SagaStep {
  const missing = (['role', 'command', 'succeeded', 'failed', 'effectId'] as const).filter((f) => typeof input?.[f] !== 'string' || input[f] === '')
  if (typeof input?.topic?.name !== 'string' || input.topic.name === '') missing.push('topic.name' as never)
  if (typeof input?.compensation?.command !== 'string' || input.compensation.command === '') missing.push('compensation.command' as never)
  if (typeof input?.compensation?.confirmed !== 'string' || input.compensation.confirmed === '') missing.push('compensation.confirmed' as never)
  if (missing.length > 0) throw new Error(`invalid step${typeof input?.command === 'string' ? ` ${input.command}` : ''}: ${missing.join(', ')} must be a non-empty string`)
  const topic = commandTopicKey(input.role)
  const name = input.name ?? input.command
  const id = (p: Payload) => String(p[input.effectId])
  return {
    name: input.name ?? input.command,
    role: input.role,
    topic: { key: topic, ...input.topic },
    command: { type: input.command, topic },
    succeeded: input.succeeded,
    failed: input.failed,
    effectId: input.effectId,
    compensation: { type: input.compensation.command, topic, confirmed: input.compensation.confirmed },
    participant: input.participant ?? { echo: [], failure: { reason: `${input.command} failed`, retryable: true }, successRate: { env: `${input.role.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_SUCCESS_RATE`, default: 1 } },
    verify: input.verify ?? {
      double: { kind: `double_${name}`, rule: `one ${name} per saga`, detail: `different ${input.effectId}s` },
      completedWithout: { kind: `completed_without_${name}`, rule: `completed ⇒ ${name} done`, never: `${name} was never done`, undone: `${name} was undone` },
      cancelledStanding: { rule: `cancelled ⇒ ${name} undone`, detail: `${name} effect(s) not undone` },
      undoneTwice: `${input.effectId} {id} undone {n} times`,
      withoutPrevious: { kind: `${name}_without_previous_step`, rule: `no ${name} after the step before failed`, taken: `${name} done without the step before`, sent: `${input.command} sent without the step before` },
    },
    notifier: input.notifier ?? { succeeded: (p) => `${name} done as ${id(p)}`, failed: name, confirmed: (p) => `${name} ${id(p)} undone` },
    ...(input.act ? { act: input.act } : {}),
    ...(input.undo ? { undo: input.undo } : {}),
    ...(input.retry ? { retry: input.retry } : {}),
  }
}

export { CANCEL_REQUESTED, DEADLINE_PASSED, PAUSE_REQUESTED, RESUME_REQUESTED, RETRY_DUE, RETRY_REQUESTED, SAGA_LEVEL_EVENTS, SAGA_STUCK, STEP_TIMED_OUT } from './decide.js'
import { RETRY_POLICY_KEYS, SAGA_LEVEL_EVENTS } from './decide.js'

/** Names the saga itself uses, that no step may take. */
const RESERVED = { topics: ['order.events', 'dlq', 'sagactl.control'], roles: ['api', 'orchestrator', 'notifier'], messages: ['set_chaos', ...SAGA_LEVEL_EVENTS] }

/**
 * The saga, checked: a name used twice would route one step's replies to another, and nothing
 * downstream would say so.
 */
export function defineSaga(input: SagaModuleInput | Saga): Saga {
  const problems: string[] = []
  const flow = Array.isArray(input?.steps) ? flowOf(input as SagaModuleInput) : { steps: input?.steps as unknown as SagaStep[] }
  // A saga already defined keeps its stages: its steps are the flat list by then.
  const saga: Saga = { ...(input as Saga), ...flow }
  if (!flow.stages && !(input as Saga).stages) delete saga.stages
  problems.push(...stageProblems(saga.stages ?? []))
  for (const field of ['started', 'completed', 'cancelled'] as const) if (typeof saga[field] !== 'string' || saga[field] === '') problems.push(`${field} must be a message type (a non-empty string)`)
  const unbuilt = saga.steps.findIndex((s) => !s || typeof s !== 'object' || typeof s.name !== 'string' || !s.topic || !s.command || !s.compensation || !s.verify)
  if (unbuilt !== -1) throw new Error(`invalid saga definition: step ${unbuilt + 1} was not made by defineStep (it lacks name, topic, command or compensation)`)
  if (saga.steps.length === 0) problems.push('a saga needs at least one step')
  if (saga.events !== undefined && (!Number.isInteger(saga.events?.partitions) || saga.events.partitions < 1)) problems.push('events.partitions (of order.events) must be a whole number ≥ 1')
  if (saga.version !== undefined && (typeof saga.version !== 'string' || !/^[A-Za-z0-9._-]{1,40}$/.test(saga.version))) problems.push(`version must be a name of 1 to 40 letters, digits, dots, dashes or underscores, got ${JSON.stringify(saga.version)}`)
  if (saga.deadlineMs !== undefined && (!Number.isInteger(saga.deadlineMs) || saga.deadlineMs < 1)) problems.push(`deadlineMs must be a whole number of milliseconds ≥ 1, got ${JSON.stringify(saga.deadlineMs)}`)
  const taken = (what: string, values: string[], reserved: string[] = []) => {
    const seen = new Set(reserved)
    for (const v of values) {
      if (seen.has(v)) problems.push(`${what} "${v}" is used twice`)
      seen.add(v)
    }
  }
  taken('role', saga.steps.map((s) => s.role), RESERVED.roles)
  taken('step name', [...saga.steps.map((s) => s.name), ...(saga.stages ?? []).flatMap((st) => (st.kind === 'parallel' ? [st.name] : st.kind === 'await' ? [st.wait?.name] : []))])
  taken('topic', saga.steps.map((s) => s.topic.name), RESERVED.topics)
  taken('message type', [saga.started, saga.completed, saga.cancelled, ...saga.steps.flatMap((s) => [s.command.type, s.succeeded, s.failed, s.compensation.type, s.compensation.confirmed]), ...waitsOf(saga).map((w) => w.event)], RESERVED.messages)
  taken('breach kind', saga.steps.flatMap((s) => [s.verify.double.kind, s.verify.completedWithout.kind, ...(s.verify.withoutPrevious ? [s.verify.withoutPrevious.kind] : [])]))
  saga.steps.forEach((s, i) => {
    if (!Number.isInteger(s.topic.partitions) || s.topic.partitions < 1) problems.push(`step ${s.name}: topic ${s.topic.name} needs at least one partition`)
    if (i > 0 && previousSteps(saga, s).length > 0 && !s.verify.withoutPrevious) problems.push(`step ${s.name} follows another step, so its verify checks need withoutPrevious`)
    if (s.topic.key !== commandTopicKey(s.role) || s.command.topic !== s.topic.key || s.compensation.topic !== s.topic.key) problems.push(`step ${s.name}: build it with defineStep`)
    for (const [field, value] of Object.entries(s.retry ?? {})) {
      if (field === 'notRetryable') {
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) problems.push(`step ${s.name}: retry.notRetryable must be a list of strings`)
      } else if (!(RETRY_POLICY_KEYS as readonly string[]).includes(field)) {
        problems.push(`step ${s.name}: retry.${field} is not a retry setting (${[...RETRY_POLICY_KEYS, 'notRetryable'].join(', ')})`)
      } else if (typeof value !== 'number' || !Number.isInteger(value) || value < (field.endsWith('Ms') && field !== 'stepTimeoutMs' ? 0 : 1)) {
        problems.push(`step ${s.name}: retry.${field} must be a whole number${field.endsWith('Ms') && field !== 'stepTimeoutMs' ? ' ≥ 0' : ' ≥ 1'}, got ${JSON.stringify(value)}`)
      }
    }
    if (s.retry?.minDelayMs !== undefined && s.retry.maxDelayMs !== undefined && s.retry.minDelayMs > s.retry.maxDelayMs) problems.push(`step ${s.name}: retry.minDelayMs is above retry.maxDelayMs`)
    if (s.act !== undefined && typeof s.act !== 'function') problems.push(`step ${s.name}: act must be a function`)
    if (s.undo !== undefined && typeof s.undo !== 'function') problems.push(`step ${s.name}: undo must be a function`)
  })
  if (problems.length > 0) throw new Error(`invalid saga definition: ${problems.join('; ')}`)
  return saga
}

/** A parallel stage needs two branches; a wait needs a name, an event and a time limit. */
function stageProblems(stages: Stage[]): string[] {
  const problems: string[] = []
  for (const stage of stages) {
    if (stage.kind === 'parallel' && stage.branches.length < 2) problems.push(`parallel stage ${stage.name}: needs at least two steps`)
    if (stage.kind !== 'await') continue
    const w = stage.wait
    if (typeof w?.name !== 'string' || w.name === '') problems.push('awaitEvent: name must be a non-empty string')
    if (typeof w?.event !== 'string' || w.event === '') problems.push(`awaitEvent ${w?.name}: event must be a message type (a non-empty string)`)
    if (!Number.isInteger(w?.timeoutMs) || w.timeoutMs < 1) problems.push(`awaitEvent ${w?.name}: timeoutMs must be a whole number of milliseconds ≥ 1, got ${JSON.stringify(w?.timeoutMs)}`)
    if (w?.onTimeout !== 'cancel' && w?.onTimeout !== 'continue') problems.push(`awaitEvent ${w?.name}: onTimeout must be 'cancel' or 'continue', got ${JSON.stringify(w?.onTimeout)}`)
  }
  return problems
}

/** The waits of a saga's flow, in order (of every version, in a deployment of several). */
export function waitsOf(saga: SagaDefinition & { versions?: SagaDefinition[] }): AwaitDefinition[] {
  const all = (saga.versions ?? [saga]).flatMap((v) => (v.stages ?? []).flatMap((st) => (st.kind === 'await' ? [st.wait] : [])))
  return all.filter((w, i) => all.findIndex((x) => x.event === w.event) === i)
}

/**
 * The participant steps of the stage before this step's, skipping waits (they have no effect):
 * what `verify` requires done before this step may act.
 */
export function previousSteps(saga: Saga, step: SagaStep): SagaStep[] {
  const stages = saga.stages ?? saga.steps.map((s) => ({ kind: 'step' as const, step: s }))
  const at = stages.findIndex((st) => (st.kind === 'step' ? st.step.name === step.name : st.kind === 'parallel' && st.branches.some((b) => b.name === step.name)))
  for (let i = at - 1; i >= 0; i--) {
    const st = stages[i]!
    if (st.kind === 'step') return [st.step as SagaStep]
    if (st.kind === 'parallel') return st.branches as SagaStep[]
  }
  return []
}

/**
 * Several versions of a saga run at once, oldest first: a saga ends under the version it started
 * under, and new sagas start on the last. A step that two versions share must be the same step
 * (name, role, topic, messages); one that changed takes another name.
 */
export function defineVersions(...versions: Saga[]): Saga {
  if (versions.length === 0) throw new Error('invalid saga versions: give at least one')
  const defined = versions.map((v) => defineSaga(v))
  const names = defined.map((v) => v.version)
  const problems: string[] = []
  if (defined.length > 1 && names.some((n) => typeof n !== 'string' || n === '')) problems.push('each version needs a name (defineSaga({ version: "v2", … }))')
  names.forEach((n, i) => {
    if (n !== undefined && names.indexOf(n) !== i) problems.push(`version "${n}" is given twice`)
  })
  const newest = defined.at(-1)!
  const steps: SagaStep[] = []
  for (const v of defined) {
    if (v.started !== newest.started || v.completed !== newest.completed || v.cancelled !== newest.cancelled) problems.push(`version ${v.version} starts or ends with other events than ${newest.version}`)
    for (const s of v.steps) {
      const same = steps.find((x) => x.name === s.name || x.role === s.role)
      if (!same) steps.push(s)
      else if (JSON.stringify(shapeOf(same)) !== JSON.stringify(shapeOf(s))) problems.push(`step ${s.name} (role ${s.role}) differs between versions: give the changed step another name and role`)
    }
  }
  if (problems.length > 0) throw new Error(`invalid saga versions: ${problems.join('; ')}`)
  if (defined.length === 1) return newest
  return { ...newest, steps, stages: newest.stages ?? newest.steps.map((step) => ({ kind: 'step' as const, step })), versions: defined }
}

function shapeOf(s: SagaStep): unknown {
  return { name: s.name, role: s.role, topic: s.topic.name, command: s.command, succeeded: s.succeeded, failed: s.failed, compensation: s.compensation, effectId: s.effectId }
}
