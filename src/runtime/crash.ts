import fs from 'node:fs'

import type { Logger } from 'pino'

export type CrashPoint = 'before-commit' | 'after-commit' | 'after-publish' | 'after-changelog'
export const CRASH_POINTS: CrashPoint[] = ['before-commit', 'after-commit', 'after-publish', 'after-changelog']

/**
 * Test-only: die abruptly (SIGKILL) once, at a chosen point. `onType` is the type of the message
 * being handled (before-commit, after-commit) or being published (after-publish), or one whose
 * changelog records were just committed (after-changelog).
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
  constructor(
    private readonly plan: CrashPlan | undefined,
    private readonly log: Logger,
  ) {}

  /** The plan's type if one of these rows carries it ('' when the plan names no type), for a point reached by rows. */
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
