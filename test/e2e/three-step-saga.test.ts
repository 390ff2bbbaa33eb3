import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { event, parseEnvelope, type Message } from '../../src/envelope.js'
import { roleNames } from '../../src/saga/derive.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { topicNames } from '../../src/topics.js'
import { buildDefinition } from '../saga/build-definition.js'
import { threeStepSaga } from '../saga/three-step-saga.js'
import { System, waitFor } from './harness.js'

// The ship step exists only in test/saga/steps/shipping.ts and its line in three-step-saga.ts;
// every role, the chaos command and verify pick it up from the built definition alone.
describe('a three-step saga (reserve → charge → ship) on a real broker, six roles in six processes', () => {
  let system: System
  let built: Awaited<ReturnType<typeof buildDefinition>> | undefined
  const placed: { order_id: string; saga_id: string }[] = []
  beforeAll(async () => {
    built = await buildDefinition('test/saga/three-step-saga.ts')
    system = await System.start(roleNames(threeStepSaga), { SAGA_DEFINITION_MODULE: built.module })
  })
  afterAll(async () => {
    await system?.stop()
    built?.remove()
  })

  const shipCommands = async (orderId: string): Promise<string[]> => {
    const commands: Message[] = []
    await system.bus.read({
      topic: topicNames(system.prefix, threeStepSaga).shippingCommands,
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        if (parsed.ok && parsed.message.order_id === orderId) commands.push(parsed.message)
      },
    })
    return commands.map((m) => m.type)
  }

  it('completes through the ship step, whose participant runs as `sagactl start shipping`', async () => {
    const order = await system.postOrder()
    placed.push(order)
    const events = await system.waitForFinal(order.order_id)

    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.succeeded', 'shipping.shipped', 'order.completed'])
    expect(events[3]!.payload).toMatchObject({ shipment_id: expect.any(String), items: [{ sku: 'book', qty: 1 }], attempt: 1 })
    expect(await shipCommands(order.order_id)).toEqual(['ship_order'])
    const line = await waitFor(() => system.logs('notifier').find((l) => l.order_id === order.order_id && l.event === 'shipping.shipped'), 'the notifier to tell the shipment')
    expect(line.msg).toContain(`│ shipping  │ shipped as ${String(events[3]!.payload.shipment_id)}`)
  })

  it('a shipment refused for good is compensated newest first: the refund, then the reservation', async () => {
    const chaos = await system.cli(['chaos', 'shipping', '--reject', '1', '--json'])
    expect(chaos.code, chaos.stderr).toBe(0)
    expect(JSON.parse(chaos.stdout)).toMatchObject({ role: 'shipping', applied: true, reject: 1 })

    const order = await system.postOrder()
    placed.push(order)
    const events = await system.waitForFinal(order.order_id)

    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.succeeded', 'shipping.ship-failed', 'payment.refunded', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(events.at(-1)!.payload.reason).toBe('rejected by chaos')
    expect(await shipCommands(order.order_id)).toEqual(['ship_order'])
  })

  it('verify, derived from the same definition, checks the ship step; the order saga\'s verify cannot see it', async () => {
    expect(placed).toHaveLength(2)
    const clean = await system.cli(['verify', '--json', '--wait-quiet', '30'])
    expect(clean.code, clean.stdout + clean.stderr).toBe(0)
    expect(JSON.parse(clean.stdout) as VerifyReport).toMatchObject({ ok: true, orders: 2, completed: 1, cancelled: 1, breaches: [] })

    // A shipping participant that forgot its shipment and shipped again, under a new id.
    const { order_id, saga_id } = placed[0]!
    const again = event('shipping.shipped', { order_id, saga_id, payload: { shipment_id: randomUUID(), attempt: 1 } }, Date.now(), randomUUID())
    await system.bus.publish([{ topic: system.topics.orderEvents, key: order_id, value: JSON.stringify(again) }])

    const breached = await system.cli(['verify', '--json'])
    expect(breached.code).toBe(1)
    expect((JSON.parse(breached.stdout) as VerifyReport).breaches.map((b) => [b.order_id, b.kind])).toEqual([[order_id, 'double_shipment']])

    const orderSagaOnly = await system.cli(['verify', '--json'], { SAGA_DEFINITION_MODULE: '' })
    expect(orderSagaOnly.code).toBe(0)
    expect(JSON.parse(orderSagaOnly.stdout) as VerifyReport).toMatchObject({ ok: true, orders: 2, breaches: [] })
  })
})
