import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { describe, expect, it } from 'vitest'

import { loopDelayByRole, mergedPercentile, readLoopStats } from '../../../src/ops/bench/loop-delay.js'
import { startLoopStats, type LoopStatsLine } from '../../../src/observe/loop-stats.js'

function line(role: string, pid: number, at: number, count: number, percentiles: [number, number][]): LoopStatsLine {
  const values = percentiles.map(([, v]) => v)
  return { role, instance: null, pid, at, interval_ms: 1000, count, resolution_ms: 10, delay_ms: { p50: values[0] ?? 0, p99: values.at(-1) ?? 0, max: values.at(-1) ?? 0 }, percentiles, final: false }
}

describe('merging event-loop delay over intervals', () => {
  it('given one interval, the merged percentile is its own', () => {
    const one = line('api', 1, 1000, 100, [[0, 1], [50, 2], [99, 30], [100, 40]])
    expect(mergedPercentile([one], 50)).toBe(2)
    expect(mergedPercentile([one], 99)).toBe(30)
  })

  it('given a quiet second and a busy one, p99 comes from where the samples are, not from an average of p99s', () => {
    // 990 samples at 1 ms and 10 at 100 ms: p99 of all of them is 1 ms, not the mean of the two p99s.
    const quiet = line('api', 1, 1000, 990, [[0, 1], [100, 1]])
    const busy = line('api', 1, 2000, 10, [[0, 100], [100, 100]])
    expect(mergedPercentile([quiet, busy], 99)).toBe(1)
    expect(mergedPercentile([quiet, busy], 99.5)).toBe(100)
  })

  it('keeps only the intervals that overlap the run and merges every process of a role', () => {
    const lines = [
      line('payment', 10, 1000, 100, [[0, 50], [100, 50]]), // ends before the run
      line('payment', 10, 2500, 100, [[0, 2], [100, 2]]),
      line('payment', 11, 4000, 100, [[0, 4], [100, 4]]), // the restarted process
      line('api', 12, 3000, 0, []), // no samples: nothing to say
    ]
    const byRole = loopDelayByRole(lines, 2000, 4000)
    expect(Object.keys(byRole)).toEqual(['payment'])
    expect(byRole.payment).toMatchObject({ samples: 200, processes: 2, p50: 2, p99: 4, max: 4 })
  })
})

describe('a role writing SAGA_LOOP_STATS', () => {
  it('given a directory, writes a final line the reader understands into a file of its own', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-stats-'))
    const stats = startLoopStats(dir, { role: 'orchestrator', instance: '2' })
    stats.stop()
    const lines = readLoopStats(dir)
    expect(fs.readdirSync(dir)).toEqual([`orchestrator@2-${process.pid}.jsonl`])
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ role: 'orchestrator', instance: '2', pid: process.pid, final: true, resolution_ms: 10 })
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('given nothing, writes nothing', () => {
    expect(() => startLoopStats(undefined, { role: 'api' }).stop()).not.toThrow()
  })
})
