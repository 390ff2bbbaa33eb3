import { describe, expect, it } from 'vitest'

import { event } from '../../src/envelope.js'
import { verifyMessages } from '../../src/ops/verify.js'
import { inventory } from '../../src/order-saga/inventory.js'
import { payment } from '../../src/order-saga/payment.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import type { DecideContext, StateStore } from '../../src/runtime/role.js'
import { defineSaga, defineVersions } from '../../src/saga/define.js'
import { definitionHash, eventTypes, roleNames, versionByHash, versionsOf } from '../../src/saga/derive.js'
import type { SagaState } from '../../src/saga/decide.js'
import { DEFAULT_ORDER_LIMITS } from '../../src/order-schema.js'
import { orchestratorRole, SAGA_SCOPE } from '../../src/services/orchestrator/role.js'
import { policy } from '../services/orchestrator/given.js'
import { shipping } from './steps/shipping.js'

const v1 = defineSaga({ ...orderSaga, version: 'v1' })
const v2 = defineSaga({ ...orderSaga, version: 'v2', steps: [inventory, payment, shipping] })
const both = defineVersions(v1, v2)

function memory(): StateStore & { rows: Map<string, unknown> } {
  const rows = new Map<string, unknown>()
  return { rows, get: <T>(scope: string, key: string) => rows.get(`${scope}|${key}`) as T | undefined, put: (scope, key, value) => void rows.set(`${scope}|${key}`, value) }
}
let n = 0
const ctx = (): DecideContext => ({ now: 1_000_000, random: () => 0.5, newId: () => `id-${++n}` })
const created = (order: string, stamp?: string) => ({ ...event('order.created', { order_id: order, saga_id: `s-${order}`, payload: { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: 5 } }, 0, `m-${order}`), type: 'order.created', ...(stamp ? { saga_definition: stamp } : {}) })

describe('defineVersions: several versions of one saga at once', () => {
  it('given v1 and v2 (which adds a step), then every version\'s steps and roles, v2\'s flow, and v2\'s hash as the one new sagas get', () => {
    expect(both.steps.map((s) => s.name)).toEqual(['reserve_inventory', 'charge_payment', 'ship_order'])
    expect(roleNames(both)).toContain('shipping')
    expect(both.stages?.map((s) => (s.kind === 'step' ? s.step.name : s.kind))).toEqual(['reserve_inventory', 'charge_payment', 'ship_order'])
    expect(versionsOf(both).map((v) => v.version)).toEqual(['v1', 'v2'])
    expect(definitionHash(both)).toBe(definitionHash(v2))
    expect(versionByHash(both, definitionHash(v1))?.version).toBe('v1')
    expect(eventTypes(both)).toContain('shipping.shipped')
  })

  it('given versions without names, a name twice, or a step changed under the same name, then each is named', () => {
    expect(() => defineVersions(orderSaga, defineSaga({ ...orderSaga, steps: [inventory, payment, shipping] }))).toThrow(/each version needs a name/)
    expect(() => defineVersions(v1, defineSaga({ ...v2, version: 'v1' }))).toThrow(/version "v1" is given twice/)
    expect(() => defineVersions(v1, defineSaga({ ...v2, steps: [inventory, { ...payment, effectId: 'transfer_id' }] }))).toThrow(/step charge_payment \(role payment\) differs between versions/)
    expect(() => defineSaga({ ...orderSaga, version: 'no spaces' })).toThrow(/version must be a name/)
  })
})

describe('the orchestrator of two versions', () => {
  it('given an order.created stamped v1, then its saga records v1 and what it sends is stamped v1; unstamped, it starts on v2', () => {
    const role = orchestratorRole(both, policy, DEFAULT_ORDER_LIMITS)
    const store = memory()
    const d1 = role.handle(created('o1', definitionHash(v1)), store, ctx())
    expect(store.get<SagaState>(SAGA_SCOPE, 'o1')?.version).toEqual({ name: 'v1', hash: definitionHash(v1) })
    expect(d1.messages?.map((m) => m.envelope.saga_definition)).toEqual([definitionHash(v1)])
    role.handle(created('o2'), store, ctx())
    expect(store.get<SagaState>(SAGA_SCOPE, 'o2')?.version?.name).toBe('v2')
  })

  it('given a saga that started under v1, when its payment succeeds, then it completes under v1: no ship step', () => {
    const role = orchestratorRole(both, policy, DEFAULT_ORDER_LIMITS)
    const store = memory()
    role.handle(created('o3', definitionHash(v1)), store, ctx())
    const reply = (type: string, payload: Record<string, unknown>) => ({ ...event(type, { order_id: 'o3', saga_id: 's-o3', payload }, 0, `r-${type}`), type })
    role.handle(reply('inventory.reserved', { reservation_id: 'r', attempt: 1 }), store, ctx())
    const d = role.handle(reply('payment.succeeded', { payment_id: 'p', attempt: 1 }), store, ctx())
    expect(d.messages?.map((m) => m.envelope.event_type)).toEqual(['order.completed'])
  })

  it('given a saga recorded under a version the orchestrator no longer runs, then its message is refused, naming the version and how to retire it safely', () => {
    const store = memory()
    store.put(SAGA_SCOPE, 'o4', { order_id: 'o4', version: { name: 'v0', hash: 'deadbeef0000' } })
    const d = orchestratorRole(both, policy, DEFAULT_ORDER_LIMITS).handle({ ...event('inventory.reserved', { order_id: 'o4', saga_id: 's', payload: {} }, 0, 'x'), type: 'inventory.reserved' }, store, ctx())
    expect(d.reject).toMatch(/started under version v0 \(deadbeef0000\), which this orchestrator does not run.*saga list --version v0/)
  })
})

describe('verify over two versions', () => {
  it('given a v1 order completed without the ship step and a v2 order completed with it, then no breach: each is held to its own version', () => {
    const msg = (order: string, type: string, payload: Record<string, unknown>, stamp: string, id: string) => ({ ...event(type, { order_id: order, saga_id: `s-${order}`, payload }, 0, id), type, saga_definition: stamp })
    const h1 = definitionHash(v1)
    const h2 = definitionHash(v2)
    const log = [
      msg('a', 'order.created', { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: 5 }, h1, 'a1'),
      msg('a', 'inventory.reserved', { reservation_id: 'ra' }, h1, 'a2'),
      msg('a', 'payment.succeeded', { payment_id: 'pa' }, h1, 'a3'),
      msg('a', 'order.completed', {}, h1, 'a4'),
      msg('b', 'order.created', { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: 5 }, h2, 'b1'),
      msg('b', 'inventory.reserved', { reservation_id: 'rb' }, h2, 'b2'),
      msg('b', 'payment.succeeded', { payment_id: 'pb' }, h2, 'b3'),
      msg('b', 'shipping.shipped', { shipment_id: 'sb' }, h2, 'b4'),
      msg('b', 'order.completed', {}, h2, 'b5'),
    ]
    const report = verifyMessages(log, new Set(), { saga: both })
    expect(report.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, completed: 2 })
    expect(verifyMessages(log.filter((m) => m.type !== 'shipping.shipped'), new Set(), { saga: both }).breaches.map((b) => [b.order_id, b.kind])).toEqual([['b', 'completed_without_shipment']])
  })
})
