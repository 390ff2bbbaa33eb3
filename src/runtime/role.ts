import type { Envelope, Message, Outgoing } from '../envelope.js'
import type { TopicKey } from '../names.js'

/** What a decision may depend on besides state and message: passed in, so decisions stay pure. */
export interface DecideContext {
  now: number
  newId(): string
  random(): number
  /** What the role's prepare() returned for this message, when it has one. */
  prepared?: unknown
}

/** Synchronous keyed state, read and written inside the role's transaction. */
export interface StateStore {
  get<T>(scope: string, key: string): T | undefined
  put(scope: string, key: string, value: unknown): void
}

export interface Notice {
  /** error: something needs a person (a stuck saga), not a failure of the role itself. */
  level: 'info' | 'warn' | 'error'
  msg: string
  fields?: Record<string, unknown>
}

export interface Timer {
  dueAt: number
  /** Delivered back to the same role, through the same inbox, when due. */
  message: Envelope
}

export interface Decision {
  messages?: Outgoing[]
  /** Replaces the pending timer of this message's order; null clears it; absent leaves it. */
  timer?: Timer | null
  /** Logged after the transaction commits. */
  notices?: Notice[]
  /** The message cannot be handled (wrong payload, unknown type): it goes to the dead-letter topic. */
  reject?: string
}

export interface RoleHandler {
  /** The app's name for the role: labels logs, metrics and dead letters; the runtime reads nothing into it. */
  name: string
  consumes: TopicKey[]
  /**
   * Reads every partition of its input itself, outside any group, and keeps its state in its own
   * file only (a read model that every instance holds whole, like the api's orders).
   */
  global?: boolean
  handle(message: Message, store: StateStore, ctx: DecideContext): Decision
  /**
   * Outside work (a call to another service) done before `handle`, outside the transaction, for a
   * message not handled before; its result reaches `handle` as ctx.prepared. A partition's
   * messages are prepared and handled one at a time, in order. It may run again for the same
   * message after a crash, so it must be idempotent (the step's idempotency key).
   */
  prepare?(message: Message, state: Pick<StateStore, 'get'>): Promise<unknown> | undefined
  /**
   * Whether a state row is done with (a finished saga), so retention may forget it once idle for
   * SAGA_RETENTION. Absent: every row is, and only idle time decides.
   */
  settled?(scope: string, value: unknown, now: number): boolean
}

/** What became of one handled message. */
export type Outcome = 'processed' | 'duplicate' | 'dead-lettered' | 'not-owned'
