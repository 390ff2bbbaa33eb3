import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { parseEnvelope } from '../../src/envelope.js'
import { API_HOP, type BenchReport } from '../../src/ops/bench/bench.js'
import { percentiles } from '../../src/ops/bench/stats.js'
import { ALL_ROLES, System } from './harness.js'

// Each run starts its own system on the shared broker; runs stay small because the machine is
// shared. Nothing here asserts a speed: only that the report is whole and its numbers consistent.

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(cleanup.map((c) => c()))
  cleanup = []
})

async function bench(args: string[], env: Record<string, string> = {}): Promise<{ report: BenchReport; chart: string; cli: System }> {
  const cli = new System()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-bench-test-'))
  cleanup.push(async () => {
    await cli.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const chart = path.join(dir, 'chart.svg')
  const result = await cli.cli(['bench', ...args, '--floor-samples', '20', '--chart', chart, '--json'], { KAFKA_BROKERS: cli.brokers, ...env })
  expect(result.code, result.stderr.slice(-2000)).toBe(0)
  return { report: JSON.parse(result.stdout) as BenchReport, chart: fs.readFileSync(chart, 'utf8'), cli }
}

function expectCpuAddsUp(report: BenchReport): void {
  expect(report.cpu.total_ms).toBe(report.processes.reduce((sum, p) => sum + p.cpu_ms, 0))
  expect(report.cpu.per_saga_ms).toBeGreaterThan(0)
  expect(report.cpu.per_saga_ms).toBeCloseTo(report.cpu.total_ms / report.sagas.finished, 1)
  // The broker counts exactly when the bench could name its process.
  expect(report.processes.some((p) => p.name === 'kafka broker')).toBe(report.cpu.broker_included)
  if (!report.cpu.broker_included) expect(report.cpu.broker).toMatch(/^not counted/)
}

describe('a short bench run on the test broker', () => {
  it('sustained through Kafka at a low rate: kept up, hops from order.created to the final event, CPU and loop delay per role', async () => {
    const { report, chart, cli } = await bench(['--duration', '8s', '--rate', '25'])
    expect(report.options).toMatchObject({ orders: 200, rate: 25, duration_s: 8, via: 'kafka' })
    expect(report.sagas).toMatchObject({ submitted: 200, finished: 200, completed: 200, cancelled: 0, hop_count: 5 })
    expect(report.sagas.latency_from).toMatch(/^order\.created's record timestamp/)
    for (const p of ['p50', 'p90', 'p99', 'max'] as const) expect(report.sagas.latency_ms[p]).toBeGreaterThan(0)
    expect(report.sagas.latency_ms.p50).toBeLessThanOrEqual(report.sagas.latency_ms.p99)
    expect(Object.keys(report.sagas.hops_ms)).toEqual([
      'order.created published → reserve_inventory published',
      'reserve_inventory published → inventory.reserved published',
      'inventory.reserved published → charge_payment published',
      'charge_payment published → payment.succeeded published',
      'payment.succeeded published → order.completed published',
    ])
    for (const hop of Object.values(report.sagas.hops_ms)) expect(hop.count).toBe(200)
    // What a load generator of its own would compute from the log: the same numbers.
    const created = new Map<string, number>()
    const finals = new Map<string, number>()
    await cli.bus.read({
      topic: `${report.topic_prefix}order.events`,
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        if (!parsed.ok) return
        if (parsed.message.type === 'order.created') created.set(parsed.message.order_id, Number(record.timestamp))
        if (parsed.message.type === 'order.completed') finals.set(parsed.message.order_id, Number(record.timestamp))
      },
    })
    expect(finals.size).toBe(200)
    expect(percentiles([...finals].map(([id, at]) => at - created.get(id)!))).toEqual(report.sagas.latency_ms)
    // The hops tile the measured span: their means add up to the latency's mean.
    const hopMeans = Object.values(report.sagas.hops_ms).reduce((sum, h) => sum + h.mean, 0)
    expect(hopMeans).toBeCloseTo(report.sagas.latency_ms.mean, 0)

    expect(report.sustained).toMatchObject({ kept_up: true, reasons: [], rate: 25, finished_in_time: 200 })
    expect(report.sustained!.submit_rate).toBeGreaterThan(0)

    expectCpuAddsUp(report)
    for (const role of ALL_ROLES) {
      const processes = report.processes.filter((p) => p.name === role)
      expect(processes, role).toHaveLength(1)
      expect(processes[0]!.cpu_ms, role).toBeGreaterThan(0)
      expect(processes[0]).toMatchObject({ exited: false, started_during_run: false, cpu_measured: 'at the end of the run' })
    }
    expect(Object.keys(report.loop_delay_ms).sort()).toEqual([...ALL_ROLES].sort())
    for (const [role, delay] of Object.entries(report.loop_delay_ms)) {
      expect(delay.samples, role).toBeGreaterThan(0)
      expect(delay.p99, role).toBeGreaterThanOrEqual(delay.p50)
      expect(delay.max, role).toBeGreaterThanOrEqual(delay.p99)
    }
    expect(report.floor_ms?.count).toBe(20)
    expect(report.p50_vs_floor).toBeGreaterThan(0)
    // An owned partition's outputs wait in memory, not in the file: the roles in a group report no outbox rows.
    expect(report.outbox_lag_ms.orchestrator?.count ?? 0).toBe(0)
    expect(chart).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>\s*$/)
  }, 300_000)

  it('through the api with payment crashing once: every order tracked from before its POST, the api hop counted, both payment processes in the CPU', async () => {
    // Payment dies (SIGKILL) on its first charge_payment, before committing; the bench restarts it.
    const { report } = await bench(['--orders', '60', '--concurrency', '8', '--via', 'api'], { SAGA_CRASH_AT: 'before-commit', SAGA_CRASH_ON: 'charge_payment' })
    expect(report.sagas).toMatchObject({ submitted: 60, finished: 60, completed: 60, hop_count: 6 })
    expect(report.sagas.latency_from).toMatch(/^POST \/orders sent/)
    expect(Object.keys(report.sagas.hops_ms)).toHaveLength(6)
    expect(Object.keys(report.sagas.hops_ms)[0]).toBe(API_HOP)
    // An event arriving before the POST's answer would be missing here if the order were tracked late.
    for (const [hop, p] of Object.entries(report.sagas.hops_ms)) expect(p.count, hop).toBe(60)
    expect(report.sustained).toBeNull()

    expectCpuAddsUp(report)
    const payments = report.processes.filter((p) => p.name === 'payment')
    expect(payments).toHaveLength(2)
    const [dead, restarted] = [payments.find((p) => p.exited), payments.find((p) => !p.exited)]
    expect(dead).toMatchObject({ started_during_run: false, cpu_measured: 'at exit, exact' })
    expect(dead!.pid).not.toBe(restarted!.pid)
    expect(restarted).toMatchObject({ started_during_run: true, cpu_measured: 'at the end of the run' })
    expect(restarted!.cpu_ms).toBeGreaterThan(0)
    expect(report.loop_delay_ms.payment?.processes).toBeGreaterThanOrEqual(1)
    // The api's accepted orders go through its file's outbox: one row each, and its wait is measured.
    expect(report.outbox_lag_ms.api?.count).toBe(60)
  }, 300_000)
})
