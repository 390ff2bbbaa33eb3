import type { CommandType, EventType, Outgoing, Payload } from '../envelope.js'
import type { Notice, Timer } from '../runtime/role.js'
import type { TopicKey } from '../names.js'

// What the engine knows of a saga definition, and the state it keeps per saga.

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

/**
 * A step that waits for an event from outside, keyed by the order (another system publishes it to
 * order.events, or POST /orders/:id/events/:type). It has no effect of its own to undo.
 */
export interface AwaitDefinition {
  name: string
  event: EventType
  timeoutMs: number
  /** What a timeout does: compensate and cancel the saga, or move on without the event. */
  onTimeout: 'cancel' | 'continue'
}

/** One stage of a saga's flow: a step, steps run side by side, or a wait for an outside event. */
export type Stage = { kind: 'step'; step: StepDefinition } | { kind: 'parallel'; name: string; branches: StepDefinition[] } | { kind: 'await'; wait: AwaitDefinition }

export interface SagaDefinition {
  started: EventType
  completed: EventType
  cancelled: EventType
  /** Every step with a participant, in the order of the flow. */
  steps: StepDefinition[]
  /** The flow, when it is not each step in turn. */
  stages?: Stage[]
  /**
   * How long a saga may run before it is cancelled (reason "deadline passed"), from its start. An
   * order may ask for an earlier one (deadline_ms in its started event's payload), never a later one.
   */
  deadlineMs?: number
}

export interface RetryPolicy {
  maxAttempts: number
  minDelayMs: number
  maxDelayMs: number
  stepTimeoutMs: number
  /** Attempts per compensation, the first included; past them the saga is stuck until `saga retry`. */
  maxCompensationAttempts: number
}

export const RETRY_POLICY_KEYS = ['maxAttempts', 'minDelayMs', 'maxDelayMs', 'stepTimeoutMs', 'maxCompensationAttempts'] as const

/** Every status a saga can be in: the one list the rest of sagactl reads. */
export const SAGA_STATUSES = ['running', 'waiting_retry', 'paused', 'compensating', 'completed', 'cancelled', 'stuck'] as const
export type SagaStatus = (typeof SAGA_STATUSES)[number]
export const IN_FLIGHT_STATUSES = ['running', 'waiting_retry', 'paused', 'compensating', 'stuck'] as const satisfies readonly SagaStatus[]

export interface DoneStep {
  step: string
  result: Payload
  at: number
}

/** Who asked for something from outside, why and when; request_id is the request's message_id. */
export interface Request {
  reason: string
  requested_by: string
  at: number
  request_id: string
}

export interface Pause extends Request {
  /** The status the saga resumes to. */
  was: 'running' | 'waiting_retry'
  /** The current attempt failed while paused: handled on resume. */
  failure?: { retryable: boolean; reason: string }
}

/** A branch of the parallel stage under way, by its step's name. */
export interface Branch {
  status: 'running' | 'waiting_retry' | 'done'
  attempt: number
  /** When its timeout (running) or its retry (waiting_retry) is due. */
  due_at: number
  /** Its attempt failed while the saga was paused: handled on resume. */
  failure?: { retryable: boolean; reason: string }
}

/** An awaited event that came before its step was reached, kept for it. */
export interface Received {
  payload: Payload
  message_id: string
  at: number
}

export interface SagaState {
  order_id: string
  saga_id: string
  order: Payload
  status: SagaStatus
  /**
   * The step being run, retried or compensated, the parallel stage under way or the event awaited;
   * a name, never an index, so definitions can change.
   */
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
  /** The version of the saga's definition it started under, and ends under (set by its orchestrator). */
  version?: { name: string; hash: string }
  /** The branches of the parallel stage under way, by step name. */
  branches?: Record<string, Branch>
  /** Awaited events that came early, by type. */
  received?: Record<string, Received>
  /** The cancel request that stopped the saga, when one did. */
  cancel_requested?: Request
  /** The pause that holds the saga, while it is paused. */
  paused?: Pause
  /** The last resume, when there was one: who asked, and when. */
  resumed?: Request
  /** When the saga is cancelled if it has not ended (its definition's deadline, or the order's earlier one). */
  deadline_at?: number
  /** When the current step's own timer (its timeout, or its retry) is due: re-armed on resume. */
  due_at?: number
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

/** The flow of a definition: its stages, or each of its steps in turn. */
export function stagesOf(def: SagaDefinition): Stage[] {
  return def.stages ?? def.steps.map((step) => ({ kind: 'step' as const, step }))
}

export function stageName(stage: Stage): string {
  return stage.kind === 'step' ? stage.step.name : stage.kind === 'parallel' ? stage.name : stage.wait.name
}

export const nothing = (): SagaDecision => ({ messages: [], notices: [] })

export function isFinished(state: Pick<SagaState, 'status'>): boolean {
  switch (state.status) {
    case 'completed':
    case 'cancelled':
      return true
    case 'running':
    case 'waiting_retry':
    case 'paused':
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
  for (const key of RETRY_POLICY_KEYS) if (own[key] !== undefined) merged[key] = own[key]
  if (own.notRetryable) merged.notRetryable = own.notRetryable
  return merged
}

export function retryDelay(policy: RetryPolicy, random: number): number {
  return policy.minDelayMs + Math.floor(random * (policy.maxDelayMs - policy.minDelayMs + 1))
}

export function unreachable(input: never): never {
  throw new Error(`unhandled saga input ${JSON.stringify(input)}`)
}
