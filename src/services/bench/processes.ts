import fs from 'node:fs'
import os from 'node:os'

export interface ProcessSample {
  name: string
  pid: number
  cpuTicks: number
  rssMiB: number
  peakRssMiB: number
}

export interface ProcessUsage {
  name: string
  pid: number
  /** CPU time used during the run, as a share of one core. */
  cpu_percent: number
  rss_mib: number
  peak_rss_mib: number
}

const TICKS = 100 // USER_HZ on Linux

/** The broker and the role processes on this machine, found by their command lines. */
export function findProcesses(roleFilter: (cmdline: string) => string | undefined): ProcessSample[] {
  if (os.platform() !== 'linux') return []
  const found: ProcessSample[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ')
      const name = roleFilter(cmdline)
      if (name) found.push(sample(name, Number(entry)))
    } catch {
      // gone meanwhile
    }
  }
  return found
}

export function sample(name: string, pid: number): ProcessSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { name, pid, cpuTicks: Number(fields[11]) + Number(fields[12]), rssMiB: Math.round(kb('VmRSS') / 1024), peakRssMiB: Math.round(kb('VmHWM') / 1024) }
}

export function usage(before: ProcessSample[], seconds: number): ProcessUsage[] {
  return before.flatMap((b) => {
    try {
      const a = sample(b.name, b.pid)
      return [{ name: b.name, pid: b.pid, cpu_percent: Math.round(((a.cpuTicks - b.cpuTicks) / TICKS / seconds) * 1000) / 10, rss_mib: a.rssMiB, peak_rss_mib: a.peakRssMiB }]
    } catch {
      return []
    }
  })
}
