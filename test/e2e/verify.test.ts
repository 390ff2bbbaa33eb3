import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { command, event, type Envelope } from '../../src/envelope.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { defineSaga } from '../../src/saga/define.js'
import type { SagaState } from '../../src/saga/decide.js'
import { SAGA_SCOPE } from '../../src/services/orchestrator/role.js'
import { changelogTopic, topicSpecs } from '../../src/topics.js'
import { shipping } from '../saga/steps/shipping.js'
import { System } from './harness.js'
import { orderSaga } from '../../src/order-saga/saga.js'

// No roles: the topics are written by hand, so what verify reads is exactly what the test says.
describe('sagactl verify, the binary, on the real broker', () => {
  let system: System
  beforeAll(async () => {
    system = new System()
    await system.bus.ensureTopics(topicSpecs(system.prefix, orderSaga))
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('with no order on the topics: exits 1 and says there was nothing to verify', async () => {
    const text = await system.cli(['verify'])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain('NOTHING TO VERIFY: 0 orders')
    const json = await system.cli(['verify', '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout) as VerifyReport).toMatchObject({ ok: false, empty: true, orders: 0, breaches: [] })
  })

  it('with no order and --allow-empty: exits 0', async () => {
    const json = await system.cli(['verify', '--allow-empty', '--json'])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout) as VerifyReport).toMatchObject({ ok: true, empty: true, orders: 0 })
  })

  it('--help names --allow-empty', async () => {
    const help = await system.cli(['verify', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--allow-empty')
  })

  it('with an order charged twice: exits 1 and the JSON names the breach by kind and order', async () => {
    // Its own prefix, so the empty-topic cases above do not depend on running first.
    const own = new System()
    await own.bus.ensureTopics(topicSpecs(own.prefix, orderSaga))
    try {
      const ids = { order_id: 'e2e-verify-order', saga_id: 'e2e-verify-saga' }
      const at = Date.now()
      const records: [keyof typeof own.topics, Envelope][] = [
        ['orderEvents', event('order.created', { ...ids, payload: { user_id: null, items: [{ sku: 'book', qty: 1 }], amount: 5 } }, at, 'v-created')],
        ['inventoryCommands', command('reserve_inventory', { ...ids, payload: { attempt: 1 } }, at, 'v-reserve')],
        ['orderEvents', event('inventory.reserved', { ...ids, payload: { reservation_id: 'res-1', attempt: 1 } }, at, 'v-reserved')],
        ['paymentCommands', command('charge_payment', { ...ids, payload: { amount: 5, attempt: 1 } }, at, 'v-charge')],
        ['orderEvents', event('payment.succeeded', { ...ids, payload: { payment_id: 'pay-1', attempt: 1 } }, at, 'v-paid-1')],
        ['orderEvents', event('payment.succeeded', { ...ids, payload: { payment_id: 'pay-2', attempt: 1 } }, at, 'v-paid-2')],
        ['orderEvents', event('order.completed', { ...ids, payload: {} }, at, 'v-completed')],
      ]
      for (const [topic, envelope] of records) await own.bus.publish([{ topic: own.topics[topic], key: ids.order_id, value: JSON.stringify(envelope) }])

      const json = await own.cli(['verify', '--json'])
      expect(json.code).toBe(1)
      const report = JSON.parse(json.stdout) as VerifyReport
      expect(report).toMatchObject({ ok: false, empty: false, orders: 1, completed: 1 })
      expect(report.breaches.map((b) => [b.order_id, b.kind])).toEqual([[ids.order_id, 'double_charge']])
    } finally {
      await own.stop()
    }
  })
})

// The user ran `dev --saga` with a saga of their own, then forgot --saga on the next command.
describe('a forgotten --saga, against a broker that has another saga’s topics and not the order saga’s', () => {
  const cards = defineSaga({ started: 'order.created', completed: 'order.completed', cancelled: 'order.cancelled', steps: [shipping] })
  let system: System
  // oclif wraps an error's lines to the terminal's width.
  const flat = (text: string): string => text.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')

  beforeAll(async () => {
    system = new System()
    await system.bus.ensureTopics(topicSpecs(system.prefix, cards))
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('verify: exits 1 with one sentence naming the missing topic, the default saga and --saga <module>, and no client error code', async () => {
    const result = await system.cli(['verify'])

    expect(result.code).toBe(1)
    const said = flat(result.stderr)
    expect(said).toMatch(new RegExp(`No topic ${system.prefix.replace(/\./g, '\\.')}(inventory|payment)\\.commands on the broker at ${system.brokers}: it is a topic of the default saga \\(the order saga\\)`))
    expect(said).toContain('pass --saga <module>')
    expect(said).not.toContain('PLT_KFK')
    expect(said).not.toContain('Unknown topic')
  })

  it('saga show: for a saga the orchestrator holds, exits 1 with the same sentence', async () => {
    const orderId = randomUUID()
    const state: SagaState = { order_id: orderId, saga_id: randomUUID(), order: {}, status: 'running', step: 'shipping', attempt: 1, done: [], compensated: [], started_at: Date.now(), updated_at: Date.now() }
    await system.bus.publish([{ topic: changelogTopic(system.prefix, 'orchestrator'), partition: system.bus.partitionOf(orderId, 8), key: `s|${SAGA_SCOPE}|${orderId}`, value: JSON.stringify(state) }])

    const result = await system.cli(['saga', 'show', orderId])

    expect(result.code).toBe(1)
    const said = flat(result.stderr)
    expect(said).toContain('it is a topic of the default saga (the order saga)')
    expect(said).toContain('pass --saga <module>')
    expect(said).not.toContain('PLT_KFK')
  })

  it("start: a role of that saga is refused with exit 2, the roles listed said to be the order saga's, and --saga suggested", async () => {
    const result = await system.cli(['start', 'shipping'])

    expect(result.code).toBe(2)
    expect(flat(result.stderr)).toContain('(got "shipping"): those are the roles of the default saga (the order saga); if "shipping" is a role of your saga, pass --saga <module>.')
  })
})
