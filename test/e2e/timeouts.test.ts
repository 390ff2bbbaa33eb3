import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { System, verifyClean, waitFor } from './harness.js'

describe('step timeouts: the step whose last attempt timed out is undone too, and a charge made but not reported in time refunded exactly once', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_STEP_TIMEOUT_MS: '1500', SAGA_RETRY_MIN_DELAY_MS: '200', SAGA_RETRY_MAX_DELAY_MS: '300' })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('payment stopped → every attempt times out → the charge, its outcome unknown, is undone first and the saga waits for payment; payment restarted → the late charge is made once and refunded once, then the reservation cancelled, one final event', async () => {
    await system.kill('payment', 'SIGTERM')
    const { order_id } = await system.postOrder()
    await waitFor(async () => (await system.typesOf('paymentCommands', order_id)).includes('refund_payment'), 'the charge to be undone', 60_000)
    const sent = await system.messagesOf('paymentCommands', order_id)
    expect(sent.filter((c) => c.type === 'charge_payment').map((c) => c.payload.attempt)).toEqual([1, 2, 3])
    expect((await system.typesOf('orderEvents', order_id)).filter((t) => t !== 'saga.step-timed-out' && t !== 'saga.retry-due')).toEqual(['order.created', 'inventory.reserved'])

    await system.startRole('payment')
    const events = await system.waitForFinal(order_id, 60_000)
    expect(events.at(-1)!.type).toBe('order.cancelled')
    expect(events.at(-1)!.payload).toEqual({ reason: expect.stringMatching(/no reply to charge_payment .*after 3 attempts/), compensated: ['charge_payment', 'reserve_inventory'] })
    // Three stale charge commands: one charge, two repeated replies with the same payment_id; refunded once.
    const charged = events.filter((e) => e.type === 'payment.succeeded')
    expect(charged).toHaveLength(3)
    expect(new Set(charged.map((e) => e.payload.payment_id)).size).toBe(1)
    expect(charged.filter((e) => e.payload.repeated === true)).toHaveLength(2)
    const refunds = events.filter((e) => e.type === 'payment.refunded')
    expect(refunds.filter((e) => e.payload.repeated !== true)).toHaveLength(1)
    expect(new Set(refunds.map((e) => e.payload.payment_id))).toEqual(new Set([charged[0]!.payload.payment_id]))
    // The reservation is released only once the charge is undone: newest first.
    expect(events.findIndex((e) => e.type === 'inventory.reservation-cancelled')).toBeGreaterThan(events.findIndex((e) => e.type === 'payment.refunded'))
    expect(events.filter((e) => e.type === 'order.cancelled' || e.type === 'order.completed')).toHaveLength(1)
    await verifyClean(system, 1)
  })

  it('payment charges and then freezes before it can reply (the service did the work, the saga cannot know) → every attempt times out → the charge is undone; payment woken → its reply, late, is undone with the rest: refunded once, the reservation cancelled, no effect left', async () => {
    await system.kill('payment', 'SIGTERM')
    // Frozen once the charge is in its file and before its reply is published: the work is done, unseen.
    await system.startRole('payment', { SAGA_CRASH_AT: 'after-commit', SAGA_CRASH_ON: 'charge_payment', SAGA_CRASH_SIGNAL: 'SIGSTOP' })
    const payment = system.roles.get('payment')!
    try {
      const { order_id } = await system.postOrder()
      await waitFor(() => payment.lines.some((l) => l.msg === 'crash point reached; freezing'), 'payment to charge and freeze', 30_000)
      await waitFor(async () => (await system.typesOf('paymentCommands', order_id)).includes('refund_payment'), 'the last attempt to time out and the charge to be undone', 60_000)
      expect((await system.messagesOf('paymentCommands', order_id)).filter((c) => c.type === 'charge_payment').map((c) => c.payload.attempt)).toEqual([1, 2, 3])
      expect(await system.typesOf('orderEvents', order_id)).not.toContain('payment.succeeded')

      payment.child.kill('SIGCONT')
      const events = await system.waitForFinal(order_id, 60_000)
      expect(events.at(-1)!.payload).toEqual({ reason: expect.stringMatching(/no reply to charge_payment .*after 3 attempts/), compensated: ['charge_payment', 'reserve_inventory'] })
      const charged = events.filter((e) => e.type === 'payment.succeeded')
      expect(charged.length).toBeGreaterThan(0)
      expect(new Set(charged.map((e) => e.payload.payment_id)).size).toBe(1)
      const refunds = events.filter((e) => e.type === 'payment.refunded')
      expect(refunds.filter((e) => e.payload.repeated !== true)).toHaveLength(1)
      expect(new Set(refunds.map((e) => e.payload.payment_id))).toEqual(new Set([charged[0]!.payload.payment_id]))
      expect(events.findIndex((e) => e.type === 'inventory.reservation-cancelled')).toBeGreaterThan(events.findIndex((e) => e.type === 'payment.refunded'))
      expect(events.filter((e) => e.type === 'order.cancelled' || e.type === 'order.completed')).toHaveLength(1)
      await verifyClean(system, 2)
    } finally {
      payment.child.kill('SIGCONT')
    }
  })
})
