import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { DeadLetter } from '../../src/ops/dead-letters.js'
import { System, waitFor } from './harness.js'

const envelope = (orderId: string, over: Record<string, unknown> = {}) => ({
  event_type: 'order.created',
  order_id: orderId,
  saga_id: randomUUID(),
  message_id: randomUUID(),
  payload: { user_id: null, items: [{ sku: 'x', qty: 1 }], amount: 10 },
  ...over,
})

describe('poison messages go to the dead-letter topic; the partition keeps moving', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start()
  })
  afterAll(async () => {
    await system?.stop()
  })

  const kinds: [string, (orderId: string) => string, RegExp][] = [
    ['invalid JSON', (id) => `{"event_type":"order.created","order_id":"${id}"`, /invalid JSON/],
    ['a missing envelope field', (id) => JSON.stringify({ ...envelope(id), message_id: undefined }), /message_id/],
    ['an unknown type', (id) => JSON.stringify(envelope(id, { event_type: 'order.teleported' })), /unknown event type/],
    ['a payload of the wrong shape', (id) => JSON.stringify(envelope(id, { payload: { items: 'many', amount: -1 } })), /payload\.items/],
    ['an oversize message', (id) => JSON.stringify(envelope(id, { payload: { items: [], amount: 1, pad: 'x'.repeat(300 * 1024) } })), /oversize/],
  ]

  it.each(kinds)('%s → dlq with its reason; the next good message in the same partition completes', async (_kind, make, reason) => {
    const orderId = randomUUID()
    const poison = make(orderId)
    const good = envelope(orderId)
    // Same key → same partition: the good message sits right behind the poison.
    await system.bus.publish([{ topic: system.topics.orderEvents, key: orderId, value: poison }])
    await system.bus.publish([{ topic: system.topics.orderEvents, key: orderId, value: JSON.stringify(good) }])
    const events = await system.waitForFinal(orderId)
    expect(events.at(-1)!.type).toBe('order.completed')

    const letters = await waitFor(async () => {
      const all = (await system.read('dlq')).map((m) => JSON.parse(m.record.value!.toString()) as DeadLetter)
      const mine = all.filter((l) => l.key === orderId && l.role === 'orchestrator')
      return mine.length > 0 ? mine : undefined
    }, 'the dead letter')
    expect(letters).toHaveLength(1)
    expect(letters[0]!.reason).toMatch(reason)
    expect(Buffer.from(letters[0]!.value_base64!, 'base64').toString()).toBe(poison)
    expect(letters[0]!.source.topic).toBe(system.topics.orderEvents)
  })

  it('a command a participant does not know goes to dlq, and the next command in its partition is handled', async () => {
    const { order_id } = await system.postOrder()
    await system.waitForFinal(order_id)
    const bogus = { command_type: 'teleport_goods', order_id, saga_id: randomUUID(), message_id: randomUUID(), payload: { attempt: 1 } }
    await system.bus.publish([{ topic: system.topics.paymentCommands, key: order_id, value: JSON.stringify(bogus) }])
    const letter = await waitFor(async () => (await system.read('dlq')).map((m) => JSON.parse(m.record.value!.toString()) as DeadLetter).find((l) => l.role === 'payment' && l.key === order_id), 'the payment dead letter')
    expect(letter.reason).toMatch(/does not handle "teleport_goods"/)
    const next = await system.postOrder()
    expect((await system.waitForFinal(next.order_id)).at(-1)!.type).toBe('order.completed')
  })

  it('dlq list shows them; dlq replay sends one back to its source topic with its original bytes, and marks it replayed', async () => {
    const list = await system.cli(['dlq', 'list', '--json'])
    expect(list.code).toBe(0)
    const letters = JSON.parse(list.stdout) as DeadLetter[]
    expect(letters.length).toBeGreaterThanOrEqual(kinds.length)
    const target = letters.find((l) => l.reason.startsWith('invalid JSON') && l.role === 'orchestrator')!

    const replayed = await system.cli(['dlq', 'replay', target.dead_letter_id, '--json'])
    expect(replayed.code).toBe(0)
    const back = await waitFor(async () => (await system.read('orderEvents')).filter((m) => m.record.headers['x-dlq-replayed-from'] === target.dead_letter_id), 'the replayed record on order.events')
      .then((found) => found)
    expect(back).toHaveLength(1)
    expect(back[0]!.record.value!.toString('base64')).toBe(target.value_base64)
    const after = JSON.parse((await system.cli(['dlq', 'list', '--json'])).stdout) as DeadLetter[]
    expect(after.find((l) => l.dead_letter_id === target.dead_letter_id)!.replayed_at).not.toBeNull()
  })
})
