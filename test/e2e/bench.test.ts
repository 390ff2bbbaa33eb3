import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { describe, expect, it } from 'vitest'

import type { BenchReport } from '../../src/services/bench/bench.js'
import { System } from './harness.js'

describe('a short bench run on the test broker', () => {
  it('completes every order and writes a well-formed report and chart (no speed asserted)', async () => {
    const cli = new System()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-bench-test-'))
    const chart = path.join(dir, 'chart.svg')
    const result = await cli.cli(['bench', '--orders', '300', '--rate', '100', '--floor-samples', '50', '--chart', chart, '--json'], { KAFKA_BROKERS: cli.brokers })
    await cli.stop()
    expect(result.code, result.stderr.slice(-2000)).toBe(0)
    const report = JSON.parse(result.stdout) as BenchReport
    expect(report.sagas).toMatchObject({ submitted: 300, finished: 300, completed: 300, cancelled: 0 })
    for (const p of ['p50', 'p90', 'p99', 'max'] as const) expect(report.sagas.latency_ms[p]).toBeGreaterThan(0)
    expect(report.sagas.latency_ms.p50).toBeLessThanOrEqual(report.sagas.latency_ms.p99)
    expect(Object.keys(report.sagas.hops_ms)).toHaveLength(5)
    for (const hop of Object.values(report.sagas.hops_ms)) expect(hop.count).toBe(300)
    expect(report.floor_ms?.count).toBe(50)
    expect(report.p50_vs_floor).toBeGreaterThan(0)
    expect(report.processes.map((p) => p.name).sort()).toEqual(expect.arrayContaining(['api', 'inventory', 'kafka broker', 'notifier', 'orchestrator', 'payment']))
    expect(report.outbox_lag_ms.orchestrator?.count).toBe(900)
    const svg = fs.readFileSync(chart, 'utf8')
    expect(svg).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>\s*$/)
    fs.rmSync(dir, { recursive: true, force: true })
  }, 300_000)
})
