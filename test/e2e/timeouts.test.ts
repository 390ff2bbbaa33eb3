import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { System, waitFor } from './harness.js'

describe('step timeouts, and a late charge refunded exactly once', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_STEP_TIMEOUT_MS: '1500', SAGA_RETRY_MIN_DELAY_MS: '200', SAGA_RETRY_MAX_DELAY_MS: '300' })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('payment stopped → every attempt times out → reservation cancelled, order cancelled; payment restarted → the late charge is refunded once', async () => {
    await system.kill('payment', 'SIGTERM')
    const { order_id } = await system.postOrder()
    const cancelled = await system.waitForFinal(order_id, 60_000)
    expect(cancelled.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'saga.step-timed-out', 'saga.retry-due', 'saga.step-timed-out', 'saga.retry-due', 'saga.step-timed-out', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(cancelled.at(-1)!.payload.reason).toMatch(/no reply to charge_payment .*after 3 attempts/)
    expect((await system.messagesOf('paymentCommands', order_id)).map((c) => c.payload.attempt)).toEqual([1, 2, 3])

    await system.startRole('payment')
    const events = await waitFor(async () => {
      const all = await system.messagesOf('orderEvents', order_id)
      return all.some((e) => e.type === 'payment.refunded') ? all : undefined
    }, 'the late charge to be refunded', 60_000)
    // Three stale charge commands: one charge, two repeated replies with the same payment_id.
    const charged = events.filter((e) => e.type === 'payment.succeeded')
    expect(charged).toHaveLength(3)
    expect(new Set(charged.map((e) => e.payload.payment_id)).size).toBe(1)
    expect(charged.filter((e) => e.payload.repeated === true)).toHaveLength(2)
    const commands = await system.typesOf('paymentCommands', order_id)
    expect(commands.filter((t) => t === 'refund_payment')).toHaveLength(1)
    const refunds = events.filter((e) => e.type === 'payment.refunded')
    expect(refunds).toHaveLength(1)
    expect(refunds[0]!.payload.payment_id).toBe(charged[0]!.payload.payment_id)
    expect(events.filter((e) => e.type === 'order.cancelled' || e.type === 'order.completed')).toHaveLength(1)
  })
})
