import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { parseEnvelope } from '../../src/envelope.js'
import { caughtUp } from '../../src/ops/quiet.js'
import { FastApiService, setUpFastApiExample } from './fastapi-services.js'
import { System, verifyClean, waitFor } from './harness.js'

// The seed's world: inventory and payment are FastAPI services in Python, with their own SQLite
// files, and sagactl bridges them over HTTP.

describe('examples/fastapi-pipeline: two FastAPI services bridged by sagactl, on a real broker', () => {
  let system: System
  let inventory: FastApiService
  let payment: FastApiService
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-fastapi-'))
  let orders = 0

  beforeAll(async () => {
    await setUpFastApiExample()
    inventory = await FastApiService.launch('inventory', path.join(dir, 'inventory.db'))
    payment = await FastApiService.launch('payment', path.join(dir, 'payment.db'))
    // Retries close together, and enough of them to outlast a service restart.
    // Three ways in: inventory as `start participant --step … --url`, payment as `start payment --url`,
    // and (in run.sh) both by their variables.
    system = await System.start(['api', 'orchestrator', 'notifier'], { SAGA_MAX_ATTEMPTS: '20', SAGA_RETRY_MIN_DELAY_MS: '200', SAGA_RETRY_MAX_DELAY_MS: '400', SAGA_STEP_TIMEOUT_MS: '5000' })
    await system.startRole('participant', {}, undefined, ['--step', 'reserve_inventory', '--url', inventory.url], 'inventory')
    await system.startRole('payment', {}, undefined, ['--url', payment.url])
  }, 400_000)
  afterAll(async () => {
    await system?.stop()
    await inventory?.kill()
    await payment?.kill()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const place = async (amount: number, sku = 'book') => {
    orders++
    return system.postOrder({ user_id: 'u1', items: [{ sku, qty: 1 }], amount })
  }

  it('the happy path: one reservation and one charge at the services, the saga completed', async () => {
    const order = await place(100)
    const events = await system.waitForFinal(order.order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.succeeded', 'order.completed'])
    const [held, charged] = [await inventory.effects(order.order_id), await payment.effects(order.order_id)]
    expect(held.effects.map((e) => [e.kind, e.status])).toEqual([['reserve', 200]])
    expect(charged.effects.map((e) => [e.kind, e.status])).toEqual([['charge', 200]])
    expect(events[2]!.payload.payment_id).toBe(charged.effects[0]!.effect_id)
  })

  it('a declined charge: the reservation is cancelled at the service, nothing is charged', async () => {
    const order = await place(13)
    const events = await system.waitForFinal(order.order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(events.at(-1)!.payload.reason).toBe('card declined')
    expect((await inventory.effects(order.order_id)).effects.map((e) => e.kind)).toEqual(['reserve', 'cancel'])
    expect((await payment.effects(order.order_id)).effects.filter((e) => e.status === 200)).toEqual([])
  })

  it('a 500 twice, then success: retried with the same key, and completed', async () => {
    const order = await place(7)
    const events = await system.waitForFinal(order.order_id)
    expect(events.at(-1)!.type).toBe('order.completed')
    const charges = (await payment.effects(order.order_id)).calls.filter((c) => c.kind === 'charge')
    expect(charges.map((c) => c.attempt)).toEqual([1, 2, 3])
    expect(new Set(charges.map((c) => c.key)).size).toBe(1)
    expect((await payment.effects(order.order_id)).effects).toHaveLength(1)
  })

  it('a duplicate command: one effect at the service', async () => {
    const order = await place(100)
    await system.waitForFinal(order.order_id)
    const commands: { key: string; value: string }[] = []
    await system.bus.read({
      topic: system.topics.paymentCommands,
      handler: (r) => {
        const parsed = parseEnvelope(r.value)
        if (parsed.ok && parsed.message.order_id === order.order_id) commands.push({ key: r.key!.toString(), value: r.value!.toString() })
      },
    })
    const original = JSON.parse(commands[0]!.value) as Record<string, unknown>
    await system.bus.publish([
      { topic: system.topics.paymentCommands, key: commands[0]!.key, value: commands[0]!.value },
      { topic: system.topics.paymentCommands, key: commands[0]!.key, value: JSON.stringify({ ...original, message_id: crypto.randomUUID() }) },
    ])
    await waitFor(async () => caughtUp(system.bus, [{ groupId: `${system.prefix}sagactl-payment`, topic: system.topics.paymentCommands }]), 'payment to handle both copies')
    const charged = await payment.effects(order.order_id)
    expect(charged.effects).toHaveLength(1)
    expect(charged.calls).toHaveLength(1)
  })

  it('a cancel over HTTP while the payment service is down (POST /orders/<id>/cancel, as the curl in docs/your-services.md): 202; the charge never got through, so its undo is confirmed with nothing to undo, and the reservation is cancelled at inventory; order.cancelled with the reason; nothing at payment', async () => {
    await payment.kill()
    const order = await place(100)
    try {
      await waitFor(async () => (await system.typesOf('orderEvents', order.order_id)).includes('payment.failed'), 'a failed charge while the service is down', 60_000)
      const response = await fetch(`${system.url}/orders/${order.order_id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'customer changed their mind' }) })
      expect(response.status).toBe(202)
      expect(await response.json()).toMatchObject({ order_id: order.order_id, status: 'cancel_requested' })

      const events = await system.waitForFinal(order.order_id, 90_000)
      expect(events.at(-1)!.type).toBe('order.cancelled')
      expect(events.at(-1)!.payload).toMatchObject({ reason: 'cancelled by request: customer changed their mind', compensated: ['charge_payment', 'reserve_inventory'] })
      expect(events.filter((e) => e.type === 'payment.refunded').map((e) => e.payload.payment_id)).toEqual([null])
      expect(events.filter((e) => e.type === 'saga.cancel-requested')).toHaveLength(1)
      expect((await system.read('control')).filter((m) => m.message?.order_id === order.order_id).map((m) => m.message!.type)).toEqual(['saga.cancel-accepted'])
      expect((await inventory.effects(order.order_id)).effects.map((e) => [e.kind, e.status])).toEqual([
        ['reserve', 200],
        ['cancel', 200],
      ])
    } finally {
      await payment.start()
    }
    // Back up, the service holds nothing for the order: no charge, and nothing was left to refund.
    expect((await payment.effects(order.order_id)).effects).toEqual([])
  })

  it('the payment service killed and restarted mid-saga: the saga ends once, correctly', async () => {
    await payment.kill()
    const order = await place(100)
    // The charge is attempted against a service that is down, and fails, before it is back.
    await waitFor(async () => (await system.messagesOf('orderEvents', order.order_id)).some((m) => m.type === 'payment.failed'), 'a failed charge while the service is down', 60_000)
    await payment.start()
    const events = await system.waitForFinal(order.order_id, 90_000)
    expect(events.at(-1)!.type).toBe('order.completed')
    expect((await payment.effects(order.order_id)).effects.map((e) => e.kind)).toEqual(['charge'])
    await verifyClean(system, orders)
  })
})
