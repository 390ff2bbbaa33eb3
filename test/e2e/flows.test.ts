import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { Message } from '../../src/envelope.js'
import type { Saga } from '../../src/saga/define.js'
import { roleNames } from '../../src/saga/derive.js'
import { System, verifyClean, waitFor } from './harness.js'

// The examples' saga modules, run as the README says, each role in its own process, on the real broker.
const PARALLEL = 'examples/parallel-saga/saga.js'
const APPROVAL = 'examples/approval-saga/saga.js'
const load = async (path: string): Promise<Saga> => ((await import(`../../${path}`)) as { default: Saga }).default

const types = (events: Message[]) => events.map((e) => e.type)

describe('a parallel stage (examples/parallel-saga: reserve ∥ authorise, then capture)', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(roleNames(await load(PARALLEL)), {}, { saga: PARALLEL })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('completes once both branches have, the capture last', async () => {
    const order = await system.postOrder()
    const events = await system.waitForFinal(order.order_id)
    expect(events.at(-1)?.type).toBe('order.completed')
    expect(types(events)).toEqual(expect.arrayContaining(['stock.reserved', 'card.authorised', 'payment.captured']))
    // The capture waits for both branches: it is the last reply.
    expect(types(events).indexOf('payment.captured')).toBeGreaterThan(Math.max(types(events).indexOf('stock.reserved'), types(events).indexOf('card.authorised')))
    const show = await system.cli(['saga', 'show', order.order_id, '--json'])
    expect(show.code, show.stderr).toBe(0)
    expect(JSON.parse(show.stdout)).toMatchObject({ status: 'completed', outcome: 'completed', step: 'capture_payment' })
  })

  it('a branch that declines after the other succeeded: the succeeded one is undone, nothing is captured, the saga ends cancelled', async () => {
    const order = await system.postOrder({ user_id: 'u1', items: [{ sku: 'piano', qty: 1 }], amount: 50_000 })
    const events = await system.waitForFinal(order.order_id)
    const t = types(events)
    expect(t.at(-1)).toBe('order.cancelled')
    expect(t.indexOf('stock.reserved')).toBeLessThan(t.indexOf('card.declined'))
    expect(t.indexOf('stock.released')).toBeGreaterThan(t.indexOf('card.declined'))
    expect(t).not.toContain('payment.captured')
    expect(events.at(-1)?.payload).toMatchObject({ reason: 'over the card limit of 10000', compensated: ['reserve_stock'] })
  })

  it('verify is clean over both', async () => {
    await verifyClean(system, 2)
  })
})

describe('a wait for an outside event (examples/approval-saga: reserve, await order.approved, charge)', () => {
  let system: System
  const post = (orderId: string, body: unknown = { approved_by: 'ops' }) =>
    fetch(`${system.url}/orders/${orderId}/events/order.approved`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  beforeAll(async () => {
    system = await System.start(roleNames(await load(APPROVAL)), { APPROVAL_TIMEOUT_MS: '4000' }, { saga: APPROVAL })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('an event that arrives while the saga waits moves it on; the same event again is the same message; after the end, 409', async () => {
    const order = await system.postOrder()
    await waitFor(async () => (await system.typesOf('orderEvents', order.order_id)).includes('stock.reserved'), 'the reservation')
    const sent = await post(order.order_id)
    expect(sent.status).toBe(202)
    const again = await post(order.order_id)
    const id = async (r: Response) => ((await r.json()) as { message_id: string }).message_id
    expect(await id(again)).toBe(await id(sent))
    const events = await system.waitForFinal(order.order_id)
    expect(types(events).at(-1)).toBe('order.completed')
    expect(types(events).indexOf('card.charged')).toBeGreaterThan(types(events).indexOf('order.approved'))
    await waitFor(async () => ((await (await fetch(`${system.url}/orders/${order.order_id}`)).json()) as { status: string }).status === 'completed', 'the api to see the end')
    expect((await post(order.order_id)).status).toBe(409)
  })

  it('an event that arrives before the saga reaches its step is kept for it', async () => {
    // The stock's first attempt fails (chaos), so the saga sits in a retry wait while the approval comes.
    const chaos = await system.cli(['chaos', 'stock', '--fail', '1', '--json'])
    expect(chaos.code, chaos.stderr).toBe(0)
    const order = await system.postOrder()
    await waitFor(async () => (await system.typesOf('orderEvents', order.order_id)).includes('stock.reserve-failed'), 'the first reservation attempt to fail')
    expect((await post(order.order_id)).status).toBe(202)
    const events = await system.waitForFinal(order.order_id)
    const t = types(events)
    expect(t.indexOf('order.approved')).toBeLessThan(t.indexOf('stock.reserved'))
    expect(t.at(-1)).toBe('order.completed')
    expect(await waitFor(() => system.logs('orchestrator').find((l) => l.order_id === order.order_id && /came before its step; kept/.test(l.msg)), 'the orchestrator to say it kept the event')).toBeTruthy()
  })

  it('an event that never comes: past the time limit the reservation is undone and the saga cancelled', async () => {
    const order = await system.postOrder()
    const events = await system.waitForFinal(order.order_id)
    expect(types(events).at(-1)).toBe('order.cancelled')
    expect(types(events)).toContain('stock.released')
    expect(types(events)).not.toContain('card.charged')
    expect(events.at(-1)?.payload).toMatchObject({ reason: 'no order.approved within 4000 ms', compensated: ['reserve_stock'] })
  })

  it('verify is clean over all three', async () => {
    await verifyClean(system, 3)
  })
})
