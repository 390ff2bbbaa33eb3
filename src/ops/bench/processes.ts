import fs from 'node:fs'
import os from 'node:os'

export interface ProcessSample {
  /** CPU time (user + system) since the process started, in clock ticks. */
  cpuTicks: number
  rssMiB: number
  peakRssMiB: number
  at: number
}

export type CpuMeasured = 'at the end of the run' | 'at exit, exact' | 'at its last sample before exit'

export interface ProcessUsage {
  name: string
  pid: number
  /** Spawned after the run began (a restart): all of its CPU belongs to the run. */
  started_during_run: boolean
  exited: boolean
  /** CPU time used during the run window. */
  cpu_ms: number
  /** That time as a share of one core over the run window. */
  cpu_percent: number
  cpu_ms_per_saga: number | null
  cpu_measured: CpuMeasured
  rss_mib: number
  peak_rss_mib: number
}

const TICK_MS = 10 // USER_HZ is 100 on Linux
const SAMPLE_EVERY_MS = 250

/** /proc/<pid>/stat and status, or undefined once the process is gone (or off Linux). */
export function sample(pid: number | 'self'): ProcessSample | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
    return { cpuTicks: Number(fields[11]) + Number(fields[12]), rssMiB: Math.round(kb('VmRSS') / 1024), peakRssMiB: Math.round(kb('VmHWM') / 1024), at: Date.now() }
  } catch {
    return undefined
  }
}

/** CPU ticks of this process's children that have exited and been reaped (cutime + cstime). */
function reapedChildrenTicks(): number {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[13]) + Number(fields[14])
  } catch {
    return 0
  }
}

interface Tracked {
  name: string
  pid: number
  baseline: number
  startedDuringRun: boolean
  last?: ProcessSample
  exit?: { reaped: number; at: number }
}

export interface ExitReading {
  pid: number
  /** The reaped-children tick count read in the process's exit handler. */
  reaped: number
  at: number
  lastTicks: number
  lastAt: number
}

/**
 * The exact CPU total of each child that exited, where it can be told apart. Linux adds a child's
 * whole CPU time to the parent's cutime/cstime when the parent reaps it, and Node's exit event comes
 * right after the reap: the rise since the previous exit is that child's total. Two children reaped
 * together share one rise, and an unwatched child's rise would inflate it, so a rise is used only
 * when it alone fits between the child's last sample and what it could have used since.
 */
export function exactTotals(exits: ExitReading[], reapedAtStart: number, cores: number): Map<number, number> {
  const totals = new Map<number, number>()
  let previous = reapedAtStart
  const groups = new Map<number, ExitReading[]>()
  for (const e of exits) groups.set(e.reaped, [...(groups.get(e.reaped) ?? []), e])
  for (const [reaped, group] of [...groups.entries()].sort((a, b) => a[0] - b[0])) {
    const rise = reaped - previous
    previous = reaped
    const only = group.length === 1 ? group[0]! : undefined
    if (!only) continue
    const most = only.lastTicks + Math.ceil(((only.at - only.lastAt) / TICK_MS) * cores) + 1
    if (rise >= only.lastTicks && rise <= most) totals.set(only.pid, rise)
  }
  return totals
}

/**
 * CPU of the processes a run started, restarted ones included, from their /proc entries. Each is
 * sampled every 250 ms while it lives; a child of this process that exits is read exactly at
 * exit (see exactTotals), anything else to its last sample.
 */
export class CpuMeter {
  readonly #tracked = new Map<number, Tracked>()
  readonly #exits: { pid: number; reaped: number; at: number }[] = []
  #startedAt: number | undefined
  #reapedAtStart = 0
  #generatorAtStart: NodeJS.CpuUsage | undefined
  #timer: NodeJS.Timeout | undefined

  /** Follows a process from now on; for a child of this process, also call `exited` on its exit. */
  track(name: string, pid: number): void {
    const startedDuringRun = this.#startedAt !== undefined
    const t: Tracked = { name, pid, baseline: 0, startedDuringRun }
    const first = sample(pid)
    if (first) t.last = first
    this.#tracked.set(pid, t)
  }

  /** The run window opens: what each process has used so far is not the run's. */
  start(): void {
    this.#reapedAtStart = reapedChildrenTicks()
    this.#generatorAtStart = process.cpuUsage()
    for (const t of this.#tracked.values()) {
      const s = sample(t.pid)
      if (!s) {
        this.#tracked.delete(t.pid)
        continue
      }
      t.last = s
      t.baseline = s.cpuTicks
    }
    this.#startedAt = Date.now()
    this.#timer = setInterval(() => this.#sampleAll(), SAMPLE_EVERY_MS)
    this.#timer.unref()
  }

  /** Call from the child's exit event, before anything else can reap another child. */
  exited(pid: number): void {
    const reaped = reapedChildrenTicks()
    const t = this.#tracked.get(pid)
    if (!t || t.exit) return
    if (this.#startedAt === undefined) {
      this.#tracked.delete(pid)
      return
    }
    t.exit = { reaped, at: Date.now() }
    this.#exits.push({ pid, reaped, at: t.exit.at })
  }

  finish(sagas: number): { window_s: number; processes: ProcessUsage[]; generator_cpu_ms: number } {
    clearInterval(this.#timer)
    this.#sampleAll()
    const started = this.#startedAt ?? Date.now()
    const windowMs = Math.max(1, Date.now() - started)
    const exits: ExitReading[] = this.#exits.map((e) => {
      const t = this.#tracked.get(e.pid)!
      return { ...e, lastTicks: t.last?.cpuTicks ?? 0, lastAt: t.last?.at ?? started }
    })
    const exact = exactTotals(exits, this.#reapedAtStart, os.cpus().length)
    const processes = [...this.#tracked.values()].map((t): ProcessUsage => {
      const total = exact.get(t.pid) ?? t.last?.cpuTicks ?? t.baseline
      const cpuMs = Math.max(0, total - t.baseline) * TICK_MS
      return {
        name: t.name,
        pid: t.pid,
        started_during_run: t.startedDuringRun,
        exited: !!t.exit,
        cpu_ms: cpuMs,
        cpu_percent: Math.round((cpuMs / windowMs) * 1000) / 10,
        cpu_ms_per_saga: sagas > 0 ? Math.round((cpuMs / sagas) * 100) / 100 : null,
        cpu_measured: !t.exit ? 'at the end of the run' : exact.has(t.pid) ? 'at exit, exact' : 'at its last sample before exit',
        rss_mib: t.last?.rssMiB ?? 0,
        peak_rss_mib: t.last?.peakRssMiB ?? 0,
      }
    })
    const generator = process.cpuUsage(this.#generatorAtStart)
    return { window_s: Math.round(windowMs / 10) / 100, processes, generator_cpu_ms: Math.round((generator.user + generator.system) / 1000) }
  }

  #sampleAll(): void {
    for (const t of this.#tracked.values()) {
      if (t.exit) continue
      const s = sample(t.pid)
      // An exited process not yet reaped still shows its CPU time, but no memory any more.
      if (s) t.last = s.rssMiB > 0 || !t.last ? s : { ...s, rssMiB: t.last.rssMiB, peakRssMiB: t.last.peakRssMiB }
    }
  }
}
