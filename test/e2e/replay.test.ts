import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { ReplayReport } from '../../src/ops/replay.js'
import type { SagaReport } from '../../src/services/orchestrator/timeline.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { System, waitFor } from './harness.js'

describe("replay rebuilds the orchestrator's state from order.events", () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_RETRY_MIN_DELAY_MS: '4000', SAGA_RETRY_MAX_DELAY_MS: '5000' })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('with its database deleted, a replay from 0 restores every saga (a pending retry too), which then finishes; a second replay changes nothing', async () => {
    const done = await Promise.all([system.postOrder(), system.postOrder(), system.postOrder()])
    await system.waitForFinals(done.map((o) => o.order_id))
    await system.chaos('inventory', '--reject', '1')
    const rejected = await system.postOrder()
    await system.waitForFinal(rejected.order_id)
    // Retries the rebuild never sees as timers, then compensation: it must come back cancelled.
    await system.chaos('payment', '--fail', '3')
    const exhausted = await system.postOrder()
    await system.waitForFinal(exhausted.order_id, 60_000)

    // One saga waits for a retry when the orchestrator goes away.
    await system.chaos('payment', '--fail', '1')
    const pending = await system.postOrder()
    await waitFor(async () => (await system.typesOf('orderEvents', pending.order_id)).includes('payment.failed'), 'the first charge to fail')
    await waitFor(() => system.logs('orchestrator').some((l) => l.order_id === pending.order_id && l.status === 'waiting_retry'), 'the retry to be scheduled')
    await system.kill('orchestrator', 'SIGKILL')
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(path.join(system.dataDir, `orchestrator.db${suffix}`), { force: true })

    const first = await system.cli(['replay', '--from-offset', '0', '--json'])
    expect(first.code, first.stderr).toBe(0)
    const report = JSON.parse(first.stdout) as ReplayReport
    const orchestrator = report.roles.find((r) => r.role === 'orchestrator')!
    expect(orchestrator.processed).toBe(report.records)
    // Everything the rebuilt orchestrator decided was already on Kafka, except nothing: not re-sent.
    expect(orchestrator.published).toBe(0)
    expect(orchestrator.suppressed).toBeGreaterThan(0)
    expect(first.stderr).toMatch(/replayed \d+\/\d+ records/)

    for (const o of done) {
      const shown = JSON.parse((await system.cli(['saga', 'show', o.order_id, '--json'])).stdout) as SagaReport
      expect(shown.outcome).toBe('completed')
    }
    const cancelled = JSON.parse((await system.cli(['saga', 'show', rejected.order_id, '--json'])).stdout) as SagaReport
    expect(cancelled.outcome).toBe('cancelled')
    const retriedOut = JSON.parse((await system.cli(['saga', 'show', exhausted.order_id, '--json'])).stdout) as SagaReport
    expect(retriedOut).toMatchObject({ outcome: 'cancelled', reason: expect.stringMatching(/after 3 attempts/) })
    const waiting = JSON.parse((await system.cli(['saga', 'show', pending.order_id, '--json'])).stdout) as SagaReport
    expect(waiting.status).toBe('waiting_retry')

    const second = JSON.parse((await system.cli(['replay', '--from-offset', '0', '--json'])).stdout) as ReplayReport
    expect(second.roles.map((r) => [r.role, r.processed, r.published])).toEqual([
      ['orchestrator', 0, 0],
      ['notifier', 0, 0],
    ])

    await system.startRole('orchestrator')
    const events = await system.waitForFinal(pending.order_id, 60_000)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.retry-due', 'payment.succeeded', 'order.completed'])

    const verify = await system.cli(['verify', '--json'])
    const verdict = JSON.parse(verify.stdout) as VerifyReport
    expect(verdict.breaches).toEqual([])
    expect(verdict).toMatchObject({ ok: true, orders: 6, completed: 4, cancelled: 2, unfinished: 0 })
    expect(verify.code).toBe(0)
  })
})
