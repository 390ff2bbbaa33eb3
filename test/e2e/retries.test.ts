import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { System, waitFor } from './harness.js'

// Contract defaults: the retry waits 5–10 s.
const MIN = 5000
const MAX = 10000

describe('retries with the default 5–10 s delays', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_RETRY_MIN_DELAY_MS: '', SAGA_RETRY_MAX_DELAY_MS: '' })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('chaos payment --fail 2 → two failures, each retry 5–10 s later, then completed', async () => {
    await system.chaos('payment', '--fail', '2')
    const { order_id } = await system.postOrder()
    const events = await system.waitForFinal(order_id, 60_000)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.retry-due', 'payment.failed', 'saga.retry-due', 'payment.succeeded', 'order.completed'])
    const charges = await system.messagesOf('paymentCommands', order_id)
    expect(charges.map((c) => c.payload.attempt)).toEqual([1, 2, 3])
    for (const attempt of [1, 2]) {
      const failedAt = Date.parse(events.find((e) => e.type === 'payment.failed' && e.payload.attempt === attempt)!.occurred_at!)
      const wait = Date.parse(charges[attempt]!.occurred_at!) - failedAt
      expect(wait).toBeGreaterThanOrEqual(MIN)
      expect(wait).toBeLessThanOrEqual(MAX + 1000)
    }
  })

  it('while one order waits for its retry, ten other orders complete', async () => {
    await system.chaos('payment', '--fail', '1')
    const waiting = await system.postOrder()
    await waitFor(async () => (await system.typesOf('orderEvents', waiting.order_id)).includes('payment.failed'), 'the first attempt to fail')
    const others = await Promise.all(Array.from({ length: 10 }, () => system.postOrder()))
    const finals = await system.waitForFinals(others.map((o) => o.order_id))
    // All ten finished while the first was still waiting out its delay.
    expect(await system.typesOf('orderEvents', waiting.order_id)).not.toContain('order.completed')
    expect(others.map((o) => finals.get(o.order_id))).toEqual(Array(10).fill('order.completed'))
    const events = await system.waitForFinal(waiting.order_id)
    expect(events.at(-1)!.type).toBe('order.completed')
  })

  it('the orchestrator killed (SIGKILL) while a saga waits for its retry, then restarted → the retry happens once, one final event', async () => {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    await waitFor(async () => (await system.typesOf('orderEvents', order_id)).includes('payment.failed'), 'the first attempt to fail')
    // The orchestrator has handled the failure once the saga is waiting in its journal.
    await waitFor(() => system.logs('orchestrator').some((l) => l.order_id === order_id && l.status === 'waiting_retry'), 'the retry to be scheduled')
    expect(await system.kill('orchestrator', 'SIGKILL')).toBeNull()
    await system.startRole('orchestrator')
    const events = await system.waitForFinal(order_id, 60_000)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.retry-due', 'payment.succeeded', 'order.completed'])
    expect((await system.messagesOf('paymentCommands', order_id)).map((c) => c.payload.attempt)).toEqual([1, 2])
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory'])
  })
})
