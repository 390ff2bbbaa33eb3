import { describe, expect, it } from 'vitest'

import type { SoakReport } from '../../src/ops/soak.js'
import { System } from './harness.js'

describe('a short soak: kills, a broker restart, duplicates and poison, then verify', () => {
  it('every order ends exactly once and correctly', async () => {
    const cli = new System()
    const result = await cli.cli(['soak', '--orders', '300', '--rate', '30', '--kill-every', '1.5', '--poison', '4', '--json'])
    await cli.stop()
    const report = JSON.parse(result.stdout) as SoakReport
    expect(report.verify.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, orders_submitted: 300, missing_orders: 0, broker_restarts: 1, poison_injected: 4 })
    expect(report.verify.orders).toBe(300)
    expect(report.verify.completed + report.verify.cancelled).toBe(300)
    expect(Object.values(report.kills).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3)
    expect(report.duplicates_injected).toBeGreaterThan(0)
    // Every order went one way or the other, and every fallback says why.
    expect(report.via_api + report.via_kafka).toBe(300)
    expect(Object.values(report.via_kafka_by_cause).reduce<number>((a, b) => a + (b ?? 0), 0)).toBe(report.via_kafka)
    expect(report.dead_letters).toBeGreaterThanOrEqual(4)
    expect(result.code).toBe(0)
  }, 600_000)

  it('with two instances of every role, kills move partitions and their state between instances; every order ends exactly once', async () => {
    const cli = new System()
    const result = await cli.cli(['soak', '--instances', '2', '--orders', '300', '--rate', '30', '--kill-every', '1.5', '--poison', '2', '--json'])
    await cli.stop()
    const report = JSON.parse(result.stdout) as SoakReport
    expect(report.verify.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, instances: 2, orders_submitted: 300, missing_orders: 0, broker_restarts: 1 })
    expect(report.verify.completed + report.verify.cancelled).toBe(300)
    // Kills hit named instances (role@1, role@2), so their partitions moved to the sibling.
    expect(Object.keys(report.kills).every((k) => /@[12]$/.test(k))).toBe(true)
    expect(Object.values(report.kills).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3)
    expect(result.code).toBe(0)
  }, 600_000)
})
