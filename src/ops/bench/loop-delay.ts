import fs from 'node:fs'
import path from 'node:path'

import type { LoopStatsLine } from '../../observe/loop-stats.js'

export interface LoopDelay {
  /** Timer samples merged, over every process of the role (restarted ones included). */
  samples: number
  processes: number
  p50: number
  p99: number
  max: number
}

/** Every line under a SAGA_LOOP_STATS directory (or in one file); torn or foreign lines are skipped. */
export function readLoopStats(target: string): LoopStatsLine[] {
  if (!fs.existsSync(target)) return []
  const files = fs.statSync(target).isDirectory() ? fs.readdirSync(target).filter((f) => f.endsWith('.jsonl')).map((f) => path.join(target, f)) : [target]
  return files.flatMap((file) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((text) => {
        try {
          const line = JSON.parse(text) as LoopStatsLine
          return typeof line.role === 'string' && Array.isArray(line.percentiles) ? [line] : []
        } catch {
          return []
        }
      }),
  )
}

/**
 * Per role, the delay over the lines whose interval overlaps [from, to] (epoch ms): intervals are
 * one second, so the window's edges are that coarse.
 */
export function loopDelayByRole(lines: LoopStatsLine[], from: number, to: number): Record<string, LoopDelay> {
  const byRole = new Map<string, LoopStatsLine[]>()
  for (const line of lines) {
    if (line.count === 0 || line.at <= from || line.at - line.interval_ms >= to) continue
    byRole.set(line.role, [...(byRole.get(line.role) ?? []), line])
  }
  const result: Record<string, LoopDelay> = {}
  for (const [role, ls] of [...byRole.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    result[role] = {
      samples: ls.reduce((n, l) => n + l.count, 0),
      processes: new Set(ls.map((l) => l.pid)).size,
      p50: mergedPercentile(ls, 50),
      p99: mergedPercentile(ls, 99),
      max: Math.max(...ls.map((l) => l.delay_ms.max)),
    }
  }
  return result
}

/**
 * The q-th percentile of several intervals' samples together. Each interval's percentile list is a
 * step CDF (p % of its samples are ≤ its value); their count-weighted mixture is the CDF of all
 * samples, and the answer is the smallest listed value where it reaches q %. A percentile of
 * percentiles (say, the mean of each second's p99) would have no such meaning.
 */
export function mergedPercentile(intervals: Pick<LoopStatsLine, 'count' | 'percentiles'>[], q: number): number {
  const total = intervals.reduce((n, i) => n + i.count, 0)
  if (total === 0) return 0
  const candidates = [...new Set(intervals.flatMap((i) => i.percentiles.map(([, v]) => v)))].sort((a, b) => a - b)
  const cdf = (v: number): number => intervals.reduce((sum, i) => sum + i.count * Math.max(0, ...i.percentiles.filter(([, x]) => x <= v).map(([p]) => p)), 0) / total
  return candidates.find((v) => cdf(v) >= q - 1e-9) ?? candidates.at(-1) ?? 0
}
