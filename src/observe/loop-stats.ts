import fs from 'node:fs'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'

/**
 * One line of SAGA_LOOP_STATS: the event-loop delay a role process saw over one interval. Lines
 * cover disjoint intervals, so a reader can keep the ones inside its own time window and merge them
 * (see bench/loop-delay.ts); one histogram per process lifetime could not be cut to a window.
 */
export interface LoopStatsLine {
  role: string
  instance: string | null
  pid: number
  /** End of the interval, epoch ms. */
  at: number
  interval_ms: number
  /** Timer samples in the interval: one per `resolution_ms` when the loop is idle, fewer when it is busy. */
  count: number
  resolution_ms: number
  /** How late the monitor's timer fired, in ms: its recorded interval minus its resolution. */
  delay_ms: { p50: number; p99: number; max: number }
  /** [percentile, delay ms] as the histogram iterates them: enough to merge intervals. */
  percentiles: [number, number][]
  /** Written as the process stops; a process killed with SIGKILL has no final line. */
  final: boolean
}

const RESOLUTION_MS = 10
const INTERVAL_MS = 1000

/**
 * Off unless `target` (SAGA_LOOP_STATS) is set: an existing directory gets a file per process
 * (`<role>[@instance]-<pid>.jsonl`), anything else is a file every process appends to. The cost is
 * one 10 ms timer inside Node and one small write per second.
 */
export function startLoopStats(target: string | undefined, unit: { role: string; instance?: string | undefined }): { stop(): void } {
  if (!target) return { stop() {} }
  const isDir = fs.existsSync(target) && fs.statSync(target).isDirectory()
  const file = isDir ? path.join(target, `${unit.role}${unit.instance ? `@${unit.instance}` : ''}-${process.pid}.jsonl`) : target
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  let since = Date.now()
  let stopped = false
  const write = (final: boolean): void => {
    const now = Date.now()
    const delay = (ns: number): number => Math.round(Math.max(0, ns / 1e6 - RESOLUTION_MS) * 100) / 100
    const line: LoopStatsLine = {
      role: unit.role,
      instance: unit.instance ?? null,
      pid: process.pid,
      at: now,
      interval_ms: now - since,
      count: histogram.count,
      resolution_ms: RESOLUTION_MS,
      delay_ms: histogram.count > 0 ? { p50: delay(histogram.percentile(50)), p99: delay(histogram.percentile(99)), max: delay(histogram.max) } : { p50: 0, p99: 0, max: 0 },
      percentiles: histogram.count > 0 ? [...histogram.percentiles].map(([p, ns]) => [p, delay(ns)]) : [],
      final,
    }
    histogram.reset()
    since = now
    // Synchronous, so the line is whole even when written from an exit handler.
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`)
  }
  const timer = setInterval(() => write(false), INTERVAL_MS)
  timer.unref()
  const stop = (): void => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    write(true)
    histogram.disable()
  }
  // A role that gives up calls process.exit: its last interval still gets written.
  process.once('exit', stop)
  return { stop }
}
