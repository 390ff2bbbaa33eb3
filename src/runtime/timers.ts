import type { Logger } from 'pino'

import { parseEnvelope, type Message } from '../envelope.js'
import type { MessageBus, ProducedRecord } from '../kafka/port.js'
import type { TraceHeaders } from '../observe/observer.js'
import type { LocalStore, TimerRow } from './local-store.js'

/** Marks a timer's message on the role's own input: the timer it fires, by key. */
export const TIMER_HEADER = 'sagactl-timer'

export interface TimersOptions {
  store: LocalStore
  bus: MessageBus
  log: Logger
  clock: () => number
  /** The role's input topic: where a due timer's message goes in a group. */
  input: () => string
  /** Handles a timer's message at once (outside a group). */
  act: (message: Message, timer: { key: string; part: number | null; dueAt: number }, trace: TraceHeaders | undefined) => void
  /** A unit of the partition was written: its changelog records are to be committed. */
  touched: (part: number | null) => void
}

/**
 * Each order has at most one timer (a retry, a step timeout), kept with its state and changelog.
 * In a group a due timer's message is published to the order's partition of the role's own input
 * and handled when read back, in log order with the replies: a timer is then a position in the log
 * that every instance that ever held the partition sees, so a zombie cannot act on one the owner
 * does not. Outside a group (a replay, the unit tests) it is handled at once.
 */
export class Timers {
  readonly #o: TimersOptions
  /** Timers whose message is on its way through the input log: key → the message id sent. */
  readonly #firing = new Map<string, string>()

  constructor(options: TimersOptions) {
    this.#o = options
  }

  /** Fires what is due in these partitions (null: all); returns how many. */
  fire(scope: number[] | null, grouped: boolean): number {
    const due = this.#o.store.dueTimers(this.#o.clock(), scope === null ? null : JSON.stringify(scope))
    if (grouped) return this.#send(due)
    let fired = 0
    for (const row of due) {
      const parsed = parseEnvelope(Buffer.from(row.input))
      if (!parsed.ok) {
        this.drop(row.key, row.part, parsed.reason)
        continue
      }
      this.#o.act(parsed.message, { key: row.key, part: row.part, dueAt: eventAtOf(parsed.message) ?? row.dueAt }, (parsed.message as { trace_headers?: TraceHeaders }).trace_headers)
      fired++
    }
    return fired
  }

  #send(due: TimerRow[]): number {
    const records: ProducedRecord[] = []
    const sent: [string, string][] = []
    for (const row of due) {
      const parsed = parseEnvelope(Buffer.from(row.input))
      if (!parsed.ok || row.part === null) {
        this.drop(row.key, row.part, parsed.ok ? 'a timer of no partition' : parsed.reason)
        continue
      }
      const id = parsed.message.message_id
      if (this.#firing.get(row.key) === id) continue
      const { trace_headers: trace, type: _type, ...body } = parsed.message as Message & { trace_headers?: TraceHeaders }
      records.push({ topic: this.#o.input(), key: parsed.message.order_id, value: JSON.stringify(body), headers: { ...trace, [TIMER_HEADER]: row.key }, partition: row.part })
      sent.push([row.key, id])
    }
    if (records.length === 0) return 0
    for (const [key, id] of sent) this.#firing.set(key, id)
    this.#o.bus.publish(records).catch((error: Error) => {
      // Fired again at the next poll.
      for (const [key, id] of sent) if (this.#firing.get(key) === id) this.#firing.delete(key)
      this.#o.log.warn({ err: error }, 'due timers could not be sent; will retry')
    })
    return records.length
  }

  /** Inside the transaction handling the timer's message: the timer is done, unless a newer one took its key since. */
  fired(key: string, messageId: string): void {
    if (this.#firing.get(key) === messageId) this.#firing.delete(key)
    const timer = this.#o.store.timer(key)
    if (timer && messageIdOf(timer.input) === messageId) this.#o.store.clearTimer(key)
  }

  /**
   * A timer that cannot be handled: deleted, with its changelog record, so it does not fire
   * forever. With `messageId`, only if the timer still sends that message (a newer one stays).
   */
  drop(key: string, part: number | null, reason?: string, messageId?: string): void {
    const store = this.#o.store
    if (messageId !== undefined) {
      const timer = store.timer(key)
      if (!timer || messageIdOf(timer.input) !== messageId) return
      if (this.#firing.get(key) === messageId) this.#firing.delete(key)
    }
    store.within(part, () =>
      store.transaction(() => {
        store.clearTimer(key)
        store.writeChangelog(this.#o.clock())
      }),
    )
    this.#o.touched(part)
    if (reason) this.#o.log.error({ key, reason }, 'unreadable timer dropped')
  }

  /** The partitions left this instance: what was on its way for them is the next owner's. */
  forget(partitions: number[]): void {
    for (const [key] of this.#firing) {
      const part = this.#o.store.timer(key)?.part
      if (part === undefined || part === null || partitions.includes(part)) this.#firing.delete(key)
    }
  }
}

/** The time a timer's decision gave it; absent in timers written before it was recorded. */
export function eventAtOf(message: Message): number | undefined {
  const at = (message as { event_at?: unknown }).event_at
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined
}

function messageIdOf(input: string): string | undefined {
  try {
    return (JSON.parse(input) as { message_id?: string }).message_id
  } catch {
    return undefined
  }
}
