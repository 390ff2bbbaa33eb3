import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { event } from '../../src/envelope.js'
import type { DeadLetter } from '../../src/ops/dead-letters.js'
import { System, waitFor } from './harness.js'

// The validation rules themselves are inject() tests (test/services/api/app.test.ts); here only
// what needs the real broker: what reaches the topics, and what the roles do with it.

const MAX_AMOUNT = 10_000

describe('one order schema at every way in, on a real broker', () => {
  let system: System
  beforeAll(async () => {
    // A long step timeout keeps retries of the orders no inventory role answers out of the topics.
    system = await System.start(['api', 'orchestrator'], { SAGA_MAX_AMOUNT: String(MAX_AMOUNT), SAGA_STEP_TIMEOUT_MS: '600000' })
  })
  afterAll(async () => {
    await system?.stop()
  })

  const post = (body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${system.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })

  const letters = async (): Promise<DeadLetter[]> => (await system.read('dlq')).map((m) => JSON.parse(m.record.value!.toString()) as DeadLetter)

  it('a refused POST publishes nothing: no record on any topic carries it, though the valid order posted after it arrives', async () => {
    const marker = `refused-${randomUUID()}`
    const refused = await post(`{"user_id": "${marker}", "items": [], "amount": 1e308}`)
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { message: string }).message).toMatch(/^body\.amount must be an integer from 1 to 10000/)

    // The outbox publishes in order: once the later valid order is on the topic, anything the
    // refused one had written would be there too.
    const { order_id } = await system.postOrder({ user_id: 'after', items: [{ sku: 'a', qty: 1 }], amount: 5 })
    await waitFor(async () => (await system.messagesOf('orderEvents', order_id)).length > 0, 'the valid order on order.events')
    for (const topic of ['orderEvents', 'inventoryCommands', 'dlq'] as const) {
      const records = (await system.read(topic)).map((m) => m.record.value!.toString())
      expect(records.filter((r) => r.includes(marker))).toEqual([])
    }
  })

  it('an order.created over SAGA_MAX_AMOUNT published straight to Kafka is dead-lettered by the orchestrator and the api: no saga, no view; the partition moves on', async () => {
    const orderId = randomUUID()
    const bad = event('order.created', { order_id: orderId, saga_id: randomUUID(), payload: { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: MAX_AMOUNT + 1 } }, Date.now())
    await system.bus.publish([{ topic: system.topics.orderEvents, key: orderId, value: JSON.stringify(bad) }])

    const mine = await waitFor(async () => {
      const found = (await letters()).filter((l) => l.key === orderId)
      return found.length === 2 ? found : undefined
    }, 'dead letters from the orchestrator and the api')
    expect(mine.map((l) => l.role).sort()).toEqual(['api', 'orchestrator'])
    for (const letter of mine) {
      expect(letter.reason).toBe(`invalid order: payload.amount must be an integer from 1 to ${MAX_AMOUNT} (minor units), got ${MAX_AMOUNT + 1}`)
      expect(JSON.parse(Buffer.from(letter.value_base64!, 'base64').toString()).message_id).toBe(bad.message_id)
    }
    expect((await fetch(`${system.url}/orders/${orderId}`)).status).toBe(404)

    // A valid order.created for the same order, right behind it in the partition, is the only one handled.
    const good = event('order.created', { order_id: orderId, saga_id: bad.saga_id, payload: { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: MAX_AMOUNT } }, Date.now())
    await system.bus.publish([{ topic: system.topics.orderEvents, key: orderId, value: JSON.stringify(good) }])
    const commands = await waitFor(async () => {
      const found = await system.messagesOf('inventoryCommands', orderId)
      return found.length > 0 ? found : undefined
    }, 'reserve_inventory for the valid order')
    expect(commands.map((c) => [c.type, c.payload.amount])).toEqual([['reserve_inventory', MAX_AMOUNT]])
    const view = await waitFor(async () => {
      const response = await fetch(`${system.url}/orders/${orderId}`)
      return response.status === 200 ? ((await response.json()) as { status: string }) : undefined
    }, 'the view of the valid order')
    expect(view.status).toBe('pending')
  })

  it('1,000 concurrent POSTs: every one answered 202, exactly 1,000 order.created on the topic, none lost, none doubled', async () => {
    const run = randomUUID().slice(0, 8)
    const answers = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        // Half carry a key, so both ways of making ids are under load.
        const response = await post({ user_id: `load-${run}-${i}`, items: [{ sku: `sku-${i % 7}`, qty: 1 + (i % 3) }], amount: 100 + i }, i % 2 === 0 ? { 'idempotency-key': `load-${run}-${i}` } : {})
        return { status: response.status, body: (await response.json()) as { order_id: string } }
      }),
    )
    expect(answers.filter((a) => a.status !== 202)).toEqual([])
    const ids = new Set(answers.map((a) => a.body.order_id))
    expect(ids.size).toBe(1000)

    // One more order after them: the outbox publishes in order, so once it is on the topic,
    // every record of the 1,000 (a doubled one included) is there to be counted.
    const sentinel = await system.postOrder({ user_id: `load-${run}-sentinel`, items: [], amount: 1 })
    const created = await waitFor(async () => {
      const all = (await system.read('orderEvents')).map((m) => m.message).filter((m) => m?.type === 'order.created')
      return all.some((m) => m!.order_id === sentinel.order_id) ? all.filter((m) => ids.has(m!.order_id)) : undefined
    }, 'the 1,000 orders and the sentinel on order.events', 90_000, 500)
    expect(created).toHaveLength(1000)
    expect(new Set(created.map((m) => m!.order_id))).toEqual(ids)
    expect(new Set(created.map((m) => m!.message_id)).size).toBe(1000)
  })
})
