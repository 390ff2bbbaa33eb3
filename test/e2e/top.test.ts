import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import net from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import type { TopView } from '../../src/ops/top.js'
import { devMetricsPort } from '../../src/ops/top.js'
import { ALL_ROLES, BIN, System, waitFor } from './harness.js'
import { orderSaga } from '../../src/order-saga/saga.js'

/**
 * A base for the dev layout's metrics ports (base + 10 × role index) whose every port is free now,
 * below the kernel's ephemeral range (32768 and up), where a client's outgoing connection could
 * take one of them between this probe and the role's bind.
 */
async function freeMetricsBase(): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(false))
      server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)))
    })
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + 100 * Math.floor(Math.random() * 120)
    const ports = ALL_ROLES.filter((role) => role !== 'api').map((role) => devMetricsPort(orderSaga, role, 0, base))
    if ((await Promise.all(ports.map(free))).every(Boolean)) return base
  }
  throw new Error('no free range of metrics ports between 20000 and 32000')
}

const COMPLETED = 6
const CANCELLED = 2

describe('sagactl top: a known load on the dev port layout, read once as JSON and live in a terminal (tmux)', () => {
  let system: System
  let base = 0
  // A tmux server of this test's own, so nothing of the user's is touched.
  const socket = `sagactl-top-${randomUUID().slice(0, 8)}`
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })

  beforeAll(async () => {
    system = new System()
    system.port = await freePort()
    base = await freeMetricsBase()
    await Promise.all(ALL_ROLES.map((role) => system.startRole(role, role === 'api' ? {} : { SAGA_METRICS_PORT: String(devMetricsPort(orderSaga, role, 0, base)) })))
    await system.chaos('inventory', '--reject', String(CANCELLED))
    const orders = []
    for (let i = 0; i < COMPLETED + CANCELLED; i++) orders.push((await system.postOrder()).order_id)
    const finals = await system.waitForFinals(orders)
    expect([...finals.values()].filter((t) => t === 'order.cancelled')).toHaveLength(CANCELLED)
  })
  afterAll(async () => {
    try {
      tmux('kill-server')
    } catch {
      // already gone: the test quit top and the server exited with its last session
    }
    await system?.stop()
  })

  const topArgs = (): string[] => ['top', '--port', String(system.port), '--metrics-port-base', String(base), '--interval', '1']

  it('--once --json: totals, nothing in flight, every role up with an empty outbox', async () => {
    const view = await waitFor(async () => {
      const result = await system.cli([...topArgs(), '--once', '--json'])
      expect(result.code, result.stderr).toBe(0)
      const view = JSON.parse(result.stdout) as TopView
      // The orchestrator counts a saga when it decides the final event; the api may lag a moment behind.
      return view.finished.completed === COMPLETED && view.roles.every((r) => r.outbox === 0 && r.lag === 0) ? view : undefined
    }, 'top to show the finished load')
    expect(view.finished).toEqual({ completed: COMPLETED, cancelled: CANCELLED })
    expect(view.in_flight).toEqual({ running: 0, waiting_retry: 0, paused: 0, compensating: 0, stuck: 0 })
    expect(view.sagas_per_s).toBe(0)
    expect(view.dead_letters).toBe(0)
    expect(view.down).toEqual([])
    expect(view.roles.map((r) => [r.role, r.up, r.endpoints])).toEqual(ALL_ROLES.map((r) => [r, 1, 1]))
    expect(view.saga_duration_s.p50).toBeGreaterThan(0)
    expect(view.saga_duration_s.p99!).toBeGreaterThanOrEqual(view.saga_duration_s.p50!)
  })

  it('live in a terminal: the screen shows the same figures, and q quits', async () => {
    tmux('new-session', '-d', '-s', 'top', '-x', '120', '-y', '30', process.execPath, BIN, ...topArgs())
    const screen = await waitFor(() => {
      const text = tmux('capture-pane', '-p', '-t', 'top')
      // Lag reads 0 once a partition's gap has stayed put for a scrape (then its records are counted).
      return /completed\s+6\s+cancelled\s+2\s+dead letters 0/.test(text) && /sagas\/s\s+0\.0/.test(text) && ALL_ROLES.every((r) => new RegExp(`^${r}\\s+1/1\\s+0\\s`, 'm').test(text)) ? text : undefined
    }, 'the dashboard to show the load')
    expect(screen).toMatch(/in flight\s+running 0\s+waiting_retry 0\s+paused 0\s+compensating 0\s+stuck 0/)
    expect(screen).toMatch(/saga duration\s+p50 [\d.]+ m?s\s+p99 [\d.]+ m?s\s/)
    for (const role of ALL_ROLES) expect(screen).toMatch(new RegExp(`^${role}\\s+1/1\\s+0\\s+0\\s+0 ms\\s+[\\d.]+\\s+0$`, 'm'))
    tmux('send-keys', '-t', 'top', 'q')
    await waitFor(() => {
      try {
        tmux('has-session', '-t', 'top')
        return false
      } catch {
        return true
      }
    }, 'top to exit on q')
  })
})
