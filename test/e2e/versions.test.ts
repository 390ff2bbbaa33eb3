import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import type { RoleName } from '../../src/saga/define.js'
import { System, waitFor } from './harness.js'

// A shape change rolled out with sagas in flight, every role in its own process on the real broker:
// v1 (reserve, wait for an approval, charge) → v1 and v2 together (v2: reserve, charge, ship) → v2 alone.
const V1 = 'test/e2e/fixtures/versions/v1.mjs'
const BOTH = 'test/e2e/fixtures/versions/v1-v2.mjs'
const V2 = 'test/e2e/fixtures/versions/v2.mjs'
const V1_ROLES = ['api', 'orchestrator', 'stock', 'bank', 'notifier'] as RoleName[]
const BOTH_ROLES = ['api', 'orchestrator', 'stock', 'bank', 'courier', 'notifier'] as RoleName[]
const IN_FLIGHT = 'running,waiting_retry,paused,compensating,stuck'

describe('versioned definitions: v1 sagas in flight end under v1 while new ones start on v2', () => {
  let system: System
  const v1Orders: string[] = []
  const v2Orders: string[] = []
  const deploy = async (module: string, roles: RoleName[]) => {
    for (const role of [...system.roles.keys()]) await system.kill(role, 'SIGTERM')
    await Promise.all(roles.map((r) => system.startRole(r, {}, undefined, ['--saga', module])))
  }
  const types = async (orderId: string) => system.typesOf('orderEvents', orderId)

  beforeAll(async () => {
    system = new System()
    system.port = await freePort()
    await Promise.all(V1_ROLES.map((r) => system.startRole(r, {}, undefined, ['--saga', V1])))
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('under v1, sagas wait for their approval', async () => {
    for (let i = 0; i < 2; i++) v1Orders.push((await system.postOrder()).order_id)
    for (const id of v1Orders) await waitFor(async () => (await types(id)).includes('stock.reserved'), `order ${id} to be reserved`)
    const list = await system.cli(['saga', 'list', '--version', 'v1', '--status', IN_FLIGHT, '--json'])
    expect(list.code, list.stderr).toBe(0)
    expect((JSON.parse(list.stdout) as { sagas: { order_id: string; step: string }[] }).sagas.map((s) => [s.order_id, s.step]).sort()).toEqual(v1Orders.map((id) => [id, 'approval']).sort())
  })

  it('rolled out with both versions: new orders start on v2 and ship; the v1 sagas, approved, end under v1 without a shipment', async () => {
    await deploy(BOTH, BOTH_ROLES)
    for (let i = 0; i < 2; i++) v2Orders.push((await system.postOrder()).order_id)
    for (const id of v2Orders) {
      const events = (await system.waitForFinal(id)).map((e) => e.type)
      expect(events).toEqual(['order.created', 'stock.reserved', 'card.charged', 'parcel.shipped', 'order.completed'])
    }
    for (const id of v1Orders) {
      const sent = await fetch(`${system.url}/orders/${id}/events/order.approved`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"approved_by":"ops"}' })
      expect(sent.status).toBe(202)
    }
    for (const id of v1Orders) {
      const events = (await system.waitForFinal(id)).map((e) => e.type)
      expect(events).toEqual(['order.created', 'stock.reserved', 'order.approved', 'card.charged', 'order.completed'])
    }
    const show = await system.cli(['saga', 'show', v1Orders[0]!, '--json', '--saga', BOTH])
    expect(JSON.parse(show.stdout).version).toMatchObject({ name: 'v1' })
    const shown = await system.cli(['saga', 'show', v2Orders[0]!, '--json', '--saga', BOTH])
    expect(JSON.parse(shown.stdout).version).toMatchObject({ name: 'v2' })
  })

  it('nothing was dead-lettered, and verify holds each order to its version', async () => {
    const letters = await system.cli(['dlq', 'list', '--json', '--saga', BOTH])
    expect(letters.code, letters.stderr).toBe(0)
    expect(JSON.parse(letters.stdout)).toEqual([])
    const verify = await system.cli(['verify', '--json', '--saga', BOTH])
    const report = JSON.parse(verify.stdout)
    expect(report.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, orders: 4, completed: 4, unfinished: 0 })
  })

  it('retired: once saga list shows no v1 saga in flight, the roles run v2 alone and new orders complete', async () => {
    const list = await system.cli(['saga', 'list', '--version', 'v1', '--status', IN_FLIGHT, '--json'])
    expect(JSON.parse(list.stdout)).toMatchObject({ matched: 0 })
    await deploy(V2, BOTH_ROLES)
    const id = (await system.postOrder()).order_id
    expect((await system.waitForFinal(id)).map((e) => e.type)).toEqual(['order.created', 'stock.reserved', 'card.charged', 'parcel.shipped', 'order.completed'])
  })
})
