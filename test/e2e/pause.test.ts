import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { parsePrometheusText, total } from '../../src/observe/prom-text.js'
import type { SagaList } from '../../src/services/orchestrator/saga-list.js'
import type { PauseResult } from '../../src/services/orchestrator/pause.js'
import type { CancelResult } from '../../src/services/orchestrator/cancel.js'
import type { SagaReport } from '../../src/services/orchestrator/timeline.js'
import { ALL_ROLES, System, verifyClean, waitFor } from './harness.js'

// A retry wait long enough to pause inside it (a CLI command takes a second or two to start), and
// short enough to watch it go by while the saga is paused.
const RETRY_WAIT_MS = 8000

describe('pause and resume a saga (POST /orders/:id/pause|resume, sagactl saga pause|resume), on the real broker', () => {
  let system: System
  let metricsUrl = ''
  let orders = 0
  beforeAll(async () => {
    system = new System({ SAGA_RETRY_MIN_DELAY_MS: String(RETRY_WAIT_MS), SAGA_RETRY_MAX_DELAY_MS: String(RETRY_WAIT_MS) })
    system.port = await freePort()
    const metricsPort = await freePort()
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
    await Promise.all(ALL_ROLES.map((role) => system.startRole(role, role === 'orchestrator' ? { SAGA_METRICS_PORT: String(metricsPort) } : {})))
  })
  afterAll(async () => {
    await system?.stop()
  })

  const ask = (kind: 'pause' | 'resume', orderId: string, body?: unknown, headers: Record<string, string> = {}) => system.postJson(`/orders/${orderId}/${kind}`, body, headers)
  const waitingRetry = (orderId: string) => waitFor(() => system.logs('orchestrator').some((l) => l.order_id === orderId && l.status === 'waiting_retry'), `order ${orderId} to wait for its retry`)
  const control = async (orderId: string) => (await system.read('control')).filter((m) => m.message?.order_id === orderId).map((m) => m.message!.type)
  const metrics = async () => parsePrometheusText(await (await fetch(metricsUrl)).text())
  // oclif wraps an error to the terminal's width.
  const oneLine = (text: string) => text.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')

  it('a pause during a retry wait → no command and no retry while paused, past the time the retry was due; `saga list --status paused` and `saga show` say so; resume → the retry at once, and the order completes', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    orders++
    await waitingRetry(order_id)

    const paused = await system.cli(['saga', 'pause', order_id, '--reason', 'address check', '--json'])
    expect(paused.code, paused.stderr).toBe(0)
    const result = JSON.parse(paused.stdout) as PauseResult
    expect(result).toMatchObject({ order_id, outcome: 'paused', status: 'paused', step: 'charge_payment', attempt: 1, reason: 'address check' })
    const failedAt = Date.parse((await system.messagesOf('orderEvents', order_id)).find((e) => e.type === 'payment.failed')!.occurred_at!)
    expect(Date.now(), 'the pause landed before the retry was due').toBeLessThan(failedAt + RETRY_WAIT_MS)

    // The changelog follows the answer within a commit interval: ask until it lists the saga.
    const listed = await waitFor(async () => {
      const run = await system.cli(['saga', 'list', '--status', 'paused', '--json'])
      return run.code === 0 && (JSON.parse(run.stdout) as SagaList).sagas.some((s) => s.order_id === order_id) ? (JSON.parse(run.stdout) as SagaList) : undefined
    }, '`saga list --status paused` to list the saga')
    expect(listed.sagas).toEqual([expect.objectContaining({ order_id, status: 'paused', step: 'charge_payment' })])
    const shown = JSON.parse((await system.cli(['saga', 'show', order_id, '--json'])).stdout) as SagaReport
    expect(shown).toMatchObject({ status: 'paused', paused: { reason: 'address check', requested_by: 'sagactl saga pause', request_id: result.request_id, was: 'waiting_retry' }, resumed: null })
    expect((await system.cli(['saga', 'show', order_id])).stdout).toContain('paused by sagactl saga pause')
    await waitFor(async () => total(await metrics(), 'sagactl_sagas', { status: 'paused' }) === 1, 'the orchestrator to count the paused saga')

    // Past the time the retry was due, a second pause is the orchestrator's to ignore, with its
    // reason. Its answer is also the marker: a retry timer firing at its due time would be in the
    // order's partition before this request, so handled, with its command, before it is answered.
    await waitFor(() => Date.now() >= failedAt + RETRY_WAIT_MS + 1000, 'the time the retry was due to pass', RETRY_WAIT_MS + 5000)
    const again = await system.cli(['saga', 'pause', order_id])
    expect(again.code).toBe(1)
    expect(oneLine(again.stderr)).toContain(`the orchestrator did not pause the saga of order ${order_id}: already paused by sagactl saga pause (${result.request_id})`)
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment'])
    expect(await system.typesOf('orderEvents', order_id)).not.toContain('saga.retry-due')

    const resumed = await ask('resume', order_id)
    expect(resumed).toEqual({ status: 202, body: { order_id, saga_id: expect.any(String), status: 'resume_requested', request_id: expect.any(String) } })
    const events = await system.waitForFinal(order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.pause-requested', 'saga.pause-requested', 'saga.resume-requested', 'saga.retry-due', 'payment.succeeded', 'order.completed'])
    expect((await system.messagesOf('paymentCommands', order_id)).map((c) => c.payload.attempt)).toEqual([1, 2])
    expect(await control(order_id)).toEqual(['saga.pause-accepted', 'saga.pause-ignored', 'saga.resume-accepted'])
    const after = await waitFor(async () => {
      const report = JSON.parse((await system.cli(['saga', 'show', order_id, '--json'])).stdout) as SagaReport
      return report.status === 'completed' ? report : undefined
    }, 'saga show to say completed')
    expect(after).toMatchObject({ paused: null, resumed: { requested_by: 'api', request_id: resumed.body.request_id } })
    expect((await system.cli(['saga', 'list', '--status', 'paused', '--json'])).stdout).not.toContain(order_id)

    // Over now: refused before anything is published.
    const late = await system.cli(['saga', 'resume', order_id])
    expect(late.code).toBe(1)
    expect(oneLine(late.stderr)).toContain(`the saga of order ${order_id} has already ended: completed; nothing changed`)
    expect((await ask('pause', order_id, { reason: 'too late' })).status).toBe(409)
  })

  it("a resume of a saga that is not paused → exit 1 with the orchestrator's reason, and the saga goes on", async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    orders++
    await waitingRetry(order_id)
    const resumed = await system.cli(['saga', 'resume', order_id])
    expect(resumed.code).toBe(1)
    expect(oneLine(resumed.stderr)).toContain(`the orchestrator did not resume the saga of order ${order_id}: the saga is waiting_retry, not paused; nothing changed`)
    expect((await system.waitForFinal(order_id)).at(-1)!.type).toBe('order.completed')
    expect(await control(order_id)).toEqual(['saga.resume-ignored'])
  })

  it('a pause, then a cancel (`saga cancel`) → the paused saga is compensated and ends cancelled, nothing left standing', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    orders++
    await waitingRetry(order_id)
    const paused = await ask('pause', order_id, { reason: 'fraud check' }, { 'idempotency-key': 'hold-1' })
    expect(paused).toEqual({ status: 202, body: { order_id, saga_id: expect.any(String), status: 'pause_requested', request_id: expect.any(String) } })
    await waitFor(async () => (await control(order_id)).includes('saga.pause-accepted'), 'the orchestrator to hold the saga')

    const cancelled = await system.cli(['saga', 'cancel', order_id, '--reason', 'fraud confirmed', '--json'])
    expect(cancelled.code, cancelled.stderr).toBe(0)
    expect(JSON.parse(cancelled.stdout) as CancelResult).toMatchObject({ order_id, outcome: 'cancelling', status: 'compensating', step: 'charge_payment', reason: 'cancelled by request: fraud confirmed' })

    const events = await system.waitForFinal(order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.pause-requested', 'saga.cancel-requested', 'payment.refunded', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(events.at(-1)!.payload).toEqual({ reason: 'cancelled by request: fraud confirmed', compensated: ['charge_payment', 'reserve_inventory'] })
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment', 'refund_payment'])
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory', 'cancel_reservation'])
    expect(await control(order_id)).toEqual(['saga.pause-accepted', 'saga.cancel-accepted'])
  })

  it('verify: no breach, the paused-then-cancelled saga has no net effect; the metrics count every answer and no saga left paused', async () => {
    const report = await verifyClean(system, orders)
    expect(report).toMatchObject({ completed: 2, cancelled: 1 })
    const m = await metrics()
    expect(total(m, 'sagactl_sagas', { status: 'paused' })).toBe(0)
    const answers = Object.fromEntries(['pause-accepted', 'pause-ignored', 'resume-accepted', 'resume-ignored', 'cancel-accepted', 'cancel-ignored'].map((k) => {
      const [request, answer] = k.split('-') as [string, string]
      return [k, total(m, 'sagactl_saga_requests_total', { request, answer })]
    }))
    expect(answers).toEqual({ 'pause-accepted': 2, 'pause-ignored': 1, 'resume-accepted': 1, 'resume-ignored': 1, 'cancel-accepted': 1, 'cancel-ignored': 0 })
  })
})
