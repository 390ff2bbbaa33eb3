import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { CancelResult } from '../../src/services/orchestrator/cancel.js'
import type { SagaReport } from '../../src/services/orchestrator/timeline.js'
import { System, verifyClean, waitFor } from './harness.js'

// A retry wait long enough to cancel inside it, and never reached by a test.
const RETRY_WAIT_MS = '60000'
// Long enough for the saga to reach its retry wait first on a loaded machine; far short of the wait.
const DEADLINE_MS = 5_000

describe('cancel a saga from outside (POST /orders/:id/cancel, sagactl saga cancel) or by its deadline, on the real broker', () => {
  let system: System
  let orders = 0
  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_RETRY_MIN_DELAY_MS: RETRY_WAIT_MS, SAGA_RETRY_MAX_DELAY_MS: RETRY_WAIT_MS })
  })
  afterAll(async () => {
    await system?.stop()
  })

  const cancel = (orderId: string, body?: unknown, headers: Record<string, string> = {}) => system.postJson(`/orders/${orderId}/cancel`, body, headers)
  const waitingRetry = (orderId: string) => waitFor(() => system.logs('orchestrator').some((l) => l.order_id === orderId && l.status === 'waiting_retry'), `order ${orderId} to wait for its retry`)
  const control = async (orderId: string) => (await system.read('control')).filter((m) => m.message?.order_id === orderId).map((m) => m.message!.type)

  it('a cancel during a retry wait (payment failing) → no retry, the charge and then the reservation undone, order.cancelled "cancelled by request: …"; the api, saga show and the notifier say so', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    orders++
    await waitingRetry(order_id)

    const answer = await cancel(order_id, { reason: 'customer changed their mind' })
    expect(answer.status).toBe(202)
    expect(answer.body).toMatchObject({ order_id, status: 'cancel_requested', request_id: expect.any(String) })

    const events = await system.waitForFinal(order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.cancel-requested', 'payment.refunded', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(events.find((e) => e.type === 'saga.cancel-requested')).toMatchObject({ message_id: answer.body.request_id, payload: { reason: 'customer changed their mind', requested_by: 'api' } })
    // The charge's outcome was unknown to the saga: undone, with nothing to undo.
    expect(events.find((e) => e.type === 'payment.refunded')!.payload).toMatchObject({ payment_id: null })
    expect(events.at(-1)!.payload).toEqual({ reason: 'cancelled by request: customer changed their mind', compensated: ['charge_payment', 'reserve_inventory'] })
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment', 'refund_payment'])
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory', 'cancel_reservation'])
    expect(await control(order_id)).toEqual(['saga.cancel-accepted'])

    const view = await waitFor(async () => {
      const v = (await (await fetch(`${system.url}/orders/${order_id}`)).json()) as { status: string; reason?: string }
      return v.status === 'cancelled' ? v : undefined
    }, 'the api to show the order cancelled')
    expect(view.reason).toBe('cancelled by request: customer changed their mind')
    const shown = await system.cli(['saga', 'show', order_id, '--json'])
    expect(shown.code, shown.stderr).toBe(0)
    const report = JSON.parse(shown.stdout) as SagaReport
    expect(report).toMatchObject({ status: 'cancelled', reason: 'cancelled by request: customer changed their mind', cancel_requested: { reason: 'customer changed their mind', requested_by: 'api', request_id: answer.body.request_id } })
    expect((await system.cli(['saga', 'show', order_id])).stdout).toContain('cancel requested by api')
    await waitFor(() => system.logs('notifier').some((l) => l.order_id === order_id && /cancel requested by api: customer changed their mind/.test(String(l.msg))), 'the notifier to tell the cancel request')
  })

  it('the same cancel twice → one cancellation: the second is ignored by the orchestrator, and a repeated Idempotency-Key is the same request', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    orders++
    await waitingRetry(order_id)
    const first = await cancel(order_id, { reason: 'twice' }, { 'idempotency-key': 'cancel-1' })
    const repeated = await cancel(order_id, { reason: 'twice' }, { 'idempotency-key': 'cancel-1' })
    const second = await cancel(order_id, { reason: 'twice' })
    expect([first.status, repeated.status]).toEqual([202, 202])
    expect(repeated.body.request_id).toBe(first.body.request_id)
    // The read model may already say cancelled by the third request; either way nothing more happens.
    expect([202, 409]).toContain(second.status)

    const events = await system.waitForFinal(order_id)
    await waitFor(async () => (await control(order_id)).length === (second.status === 202 ? 2 : 1), 'the orchestrator to answer every request it got')
    const after = await system.messagesOf('orderEvents', order_id)
    expect(after.filter((e) => e.type === 'order.cancelled')).toHaveLength(1)
    expect(events.at(-1)!.payload.reason).toBe('cancelled by request: twice')
    expect(after.filter((e) => e.type === 'saga.cancel-requested').map((e) => e.message_id)).toContain(first.body.request_id)
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment', 'refund_payment'])
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory', 'cancel_reservation'])
    expect(await control(order_id)).toEqual(second.status === 202 ? ['saga.cancel-accepted', 'saga.cancel-ignored'] : ['saga.cancel-accepted'])
  })

  it('a cancel after completion → 409 with the final status (api) and exit 1 (CLI); nothing is published and nothing changes', async () => {
    const { order_id } = await system.postOrder()
    orders++
    await system.waitForFinal(order_id)
    await waitFor(async () => ((await (await fetch(`${system.url}/orders/${order_id}`)).json()) as { status: string }).status === 'completed', 'the api to show the order completed')
    const before = await system.messagesOf('orderEvents', order_id)

    const answer = await cancel(order_id, { reason: 'too late' })
    expect(answer.status).toBe(409)
    expect(answer.body).toMatchObject({ statusCode: 409, error: 'Conflict', status: 'completed', message: `order ${order_id} has already ended: completed; nothing changed` })
    const cli = await system.cli(['saga', 'cancel', order_id, '--reason', 'too late'])
    expect(cli.code).toBe(1)
    // oclif wraps the message to the terminal's width.
    expect(cli.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')).toContain(`the saga of order ${order_id} has already ended: completed; nothing changed`)
    expect((await system.cli(['saga', 'cancel', 'no-such-order'])).code).toBe(1)
    expect((await cancel('no-such-order', {})).status).toBe(404)

    expect(await system.messagesOf('orderEvents', order_id)).toEqual(before)
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory'])
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment'])
  })

  it('a cancel while the charge is in flight (payment down), by `sagactl saga cancel` → its undo goes out at once; payment back leaves no charge standing; order.cancelled', async () => {
    await system.kill('payment', 'SIGTERM')
    const { order_id } = await system.postOrder()
    orders++
    await waitFor(async () => (await system.typesOf('paymentCommands', order_id)).includes('charge_payment'), 'the charge to be sent')

    const cli = await system.cli(['saga', 'cancel', order_id, '--reason', 'fraud check said stop', '--json', '--timeout', '60'])
    expect(cli.code, cli.stderr).toBe(0)
    const result = JSON.parse(cli.stdout) as CancelResult
    expect(result).toMatchObject({ order_id, outcome: 'cancelling', status: 'compensating', step: 'charge_payment', reason: 'cancelled by request: fraud check said stop' })
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment', 'refund_payment'])

    await system.startRole('payment')
    const events = await system.waitForFinal(order_id)
    // Either the charge got there first (made, then refunded with its id) or its undo did (confirmed
    // with nothing to undo, and the late charge declined): no charge is left standing.
    const charged = events.filter((e) => e.type === 'payment.succeeded').map((e) => e.payload.payment_id)
    const refunded = events.filter((e) => e.type === 'payment.refunded').map((e) => e.payload.payment_id)
    expect(refunded).toHaveLength(1)
    expect(charged.length === 0 ? [null] : charged).toEqual(refunded)
    expect(events.at(-1)!.payload).toEqual({ reason: 'cancelled by request: fraud check said stop', compensated: ['charge_payment', 'reserve_inventory'] })
    expect(events.find((e) => e.type === 'saga.cancel-requested')!.payload).toEqual({ reason: 'fraud check said stop', requested_by: 'sagactl saga cancel' })
  })

  it('the bulk form: `saga cancel --status waiting_retry --older-than 1s --dry-run` lists the waiting saga and publishes nothing; without --dry-run it is cancelled', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    orders++
    await waitingRetry(order_id)
    // The saga must be a second old before --older-than 1s selects it: ask until it does.
    const dry = await waitFor(async () => {
      const run = await system.cli(['saga', 'cancel', '--status', 'waiting_retry', '--older-than', '1s', '--dry-run', '--json'])
      return run.code === 0 && (JSON.parse(run.stdout) as { sagas: { order_id: string }[] }).sagas.some((s) => s.order_id === order_id) ? run : undefined
    }, 'the dry run to list the waiting saga once it is over 1 s old', 30_000, 250)
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, sagas: [{ order_id, status: 'waiting_retry' }], request_ids: [] })
    expect(await system.typesOf('orderEvents', order_id)).not.toContain('saga.cancel-requested')

    const bulk = await system.cli(['saga', 'cancel', '--status', 'waiting_retry', '--older-than', '1s', '--reason', 'payment provider down', '--json'])
    expect(bulk.code, bulk.stderr).toBe(0)
    expect(JSON.parse(bulk.stdout)).toMatchObject({ dry_run: false, sagas: [{ order_id }], request_ids: [expect.any(String)] })
    const events = await system.waitForFinal(order_id)
    expect(events.at(-1)!.payload.reason).toBe('cancelled by request: payment provider down')
  })

  it('an order with deadline_ms whose payment fails retryably → the deadline passes during the retry wait: saga.deadline-passed, the unknown charge and then the reservation undone, order.cancelled "deadline passed"; no request, so nothing on sagactl.control', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder({ user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 999, deadline_ms: DEADLINE_MS })
    orders++
    // The retry is a minute away: only the deadline can end this saga within the wait below.
    await waitingRetry(order_id)

    const events = await system.waitForFinal(order_id, 30_000)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.deadline-passed', 'payment.refunded', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(events[0]!.payload.deadline_ms).toBe(DEADLINE_MS)
    const passed = events.find((e) => e.type === 'saga.deadline-passed')!
    const deadlineAt = passed.payload.deadline_at as number
    const createdAt = Date.parse(events[0]!.occurred_at!)
    expect(deadlineAt - createdAt).toBeGreaterThanOrEqual(DEADLINE_MS)
    expect(deadlineAt - createdAt).toBeLessThan(DEADLINE_MS + 5_000)
    // The timer was set when the payment failed; the saga was cancelled only once it fell due.
    expect(Date.parse(events.at(-1)!.occurred_at!)).toBeGreaterThanOrEqual(deadlineAt)
    const reserved = events.find((e) => e.type === 'inventory.reserved')!.payload.reservation_id
    expect(events.find((e) => e.type === 'inventory.reservation-cancelled')!.payload.reservation_id).toBe(reserved)
    expect(events.find((e) => e.type === 'payment.refunded')!.payload).toMatchObject({ payment_id: null })
    expect(events.at(-1)!.payload).toEqual({ reason: 'deadline passed', compensated: ['charge_payment', 'reserve_inventory'] })
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment', 'refund_payment'])
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory', 'cancel_reservation'])
    expect(await control(order_id)).toEqual([])
    await waitFor(async () => {
      const v = (await (await fetch(`${system.url}/orders/${order_id}`)).json()) as { status: string; reason?: string }
      return v.status === 'cancelled' && v.reason === 'deadline passed'
    }, 'the api to show the order cancelled, "deadline passed"')
  })

  it('verify: every saga cancelled by request or by its deadline has no net effect, the completed one stands', async () => {
    const report = await verifyClean(system, orders)
    expect(report).toMatchObject({ completed: 1, cancelled: orders - 1 })
  })
})
