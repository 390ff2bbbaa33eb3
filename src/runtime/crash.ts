import fs from 'node:fs'

import type { Logger } from 'pino'

export type CrashPoint = 'before-commit' | 'after-commit' | 'after-publish' | 'after-changelog'
export const CRASH_POINTS: CrashPoint[] = ['before-commit', 'after-commit', 'after-publish', 'after-changelog']

/**
 * Test-only: die abruptly (SIGKILL) once, at a chosen point. `onType` is the type of the message
 * being handled (before-commit, after-commit), being published (after-publish), or handled and
 * whose changelog records and offset were just committed (after-changelog).
 */
export interface CrashPlan {
  at: CrashPoint
  onType?: string
  /** Written before dying, so the restarted process does not crash again. */
  marker: string
  /**
   * SIGKILL (the default) dies; SIGSTOP freezes, so the process becomes a zombie that holds what it
   * committed but did not publish, until a SIGCONT wakes it.
   */
  signal?: 'SIGKILL' | 'SIGSTOP'
}

// Crash points stay on the hot path: with no crash plan (every run but the crash tests) each check returns on one undefined test.
export class Crasher {
  /** after-changelog: the partition and the sequence of the rows of the handling to die after, once a commit covers them. */
  #armed: { part: number; seq: number } | undefined

  constructor(
    private readonly plan: CrashPlan | undefined,
    private readonly log: Logger,
  ) {}

  /** A message of `type` was handled, its rows at or below `seq`: a plan for `point` waits for a commit that covers them. */
  arm(point: CrashPoint, type: string, part: number | null, seq: number): void {
    const plan = this.plan
    if (!plan || plan.at !== point || part === null || this.#armed !== undefined || (plan.onType && plan.onType !== type)) return
    this.#armed = { part, seq }
  }

  /** The partition's rows up to `seq` were committed: dies if they cover the armed handling. */
  reached(point: CrashPoint, part: number, seq: number): void {
    if (this.#armed === undefined || this.#armed.part !== part || seq < this.#armed.seq) return
    this.maybe(point, this.plan?.onType ?? '')
  }

  /** The plan's type if one of these rows carries it ('' when the plan names no type), for a point reached by published rows. */
  typeIn(point: CrashPoint, rows: { value: string | null }[]): string | undefined {
    const plan = this.plan
    if (!plan || plan.at !== point) return undefined
    if (!plan.onType) return ''
    return rows.some((r) => r.value?.includes(`"${plan.onType}"`)) ? plan.onType : undefined
  }

  maybe(point: CrashPoint, type: string | undefined): void {
    const plan = this.plan
    if (!plan || plan.at !== point || type === undefined || (plan.onType && plan.onType !== type) || fs.existsSync(plan.marker)) return
    fs.writeFileSync(plan.marker, `${point} ${type}\n`)
    const signal = plan.signal ?? 'SIGKILL'
    this.log.warn({ crash: point, type, signal }, signal === 'SIGSTOP' ? 'crash point reached; freezing' : 'crash point reached; dying abruptly')
    process.kill(process.pid, signal)
  }
}
