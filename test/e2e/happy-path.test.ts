import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { System, waitFor } from './harness.js'

describe('happy path on a real broker, five roles in five processes', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start()
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('POST /orders → created, reserved, succeeded, completed — and every role shows its part', async () => {
    const { order_id, saga_id } = await system.postOrder()
    const events = await system.waitForFinal(order_id)

    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.succeeded', 'order.completed'])
    expect(new Set(events.map((e) => e.saga_id))).toEqual(new Set([saga_id]))
    expect(new Set(events.map((e) => e.message_id)).size).toBe(events.length)
    expect(events[1]!.payload.reservation_id).toEqual(expect.any(String))
    expect(events[2]!.payload.payment_id).toEqual(expect.any(String))
    expect(events[2]!.payload.attempt).toBe(1)

    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory'])
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment'])

    const view = await waitFor(async () => {
      const r = await fetch(`${system.url}/orders/${order_id}`)
      const body = (await r.json()) as { status: string; saga_id: string }
      return body.status === 'completed' ? body : undefined
    }, 'GET /orders/:id to say completed')
    expect(view.saga_id).toBe(saga_id)

    const chain = await waitFor(() => {
      const lines = system.logs('notifier').filter((l) => l.order_id === order_id)
      return lines.length >= 4 ? lines : undefined
    }, 'the notifier to log the whole chain')
    expect(chain.map((l) => l.event)).toEqual(['order.created', 'inventory.reserved', 'payment.succeeded', 'order.completed'])
    expect(chain.at(-1)!.msg).toContain('COMPLETED')
  })

  it('GET /orders/:id of an unknown order is 404, and /healthz is 200', async () => {
    expect((await fetch(`${system.url}/orders/${randomUUID()}`)).status).toBe(404)
    expect((await fetch(`${system.url}/healthz`)).status).toBe(200)
  })

  it('the same order.created published twice (same message_id) → one saga, one reservation, one charge, one final event', async () => {
    const order_id = randomUUID()
    const created = {
      event_type: 'order.created',
      order_id,
      saga_id: randomUUID(),
      message_id: randomUUID(),
      payload: { user_id: null, items: [{ sku: 'pen', qty: 3 }], amount: 250 },
    }
    const record = { topic: system.topics.orderEvents, key: order_id, value: JSON.stringify(created) }
    await system.bus.publish([record])
    await system.bus.publish([record])

    await system.waitForFinal(order_id)
    // Count only once every consumer of order.events has seen the second copy and ignored it.
    for (const role of ['orchestrator', 'notifier', 'api'] as const) {
      await waitFor(() => system.logs(role).some((l) => l.msg === 'duplicate ignored' && l.message_id === created.message_id), `${role} to ignore the copy`)
    }
    const events = await system.typesOf('orderEvents', order_id)
    expect(events.filter((t) => t === 'order.created')).toHaveLength(2)
    expect(events.filter((t) => t !== 'order.created')).toEqual(['inventory.reserved', 'payment.succeeded', 'order.completed'])
    expect(await system.typesOf('inventoryCommands', order_id)).toEqual(['reserve_inventory'])
    expect(await system.typesOf('paymentCommands', order_id)).toEqual(['charge_payment'])
  })

  it('a POST retried with the same Idempotency-Key is the same order: one order.created, one saga', async () => {
    const key = randomUUID()
    const post = () =>
      fetch(`${system.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify({ items: [{ sku: 'mug', qty: 1 }], amount: 1200 }) }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as { order_id: string; saga_id: string } }),
      )
    const first = await post()
    const second = await post()
    expect([first.status, second.status]).toEqual([202, 202])
    expect(second.body).toEqual(first.body)
    await system.waitForFinal(first.body.order_id)
    const events = await system.typesOf('orderEvents', first.body.order_id)
    expect(events.filter((t) => t === 'order.created')).toHaveLength(1)
  })
})
