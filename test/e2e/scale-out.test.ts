import fs from 'node:fs'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import type { SagaReport } from '../../src/services/orchestrator/timeline.js'
import { BODY, owned, post, System, verifyClean, waitFor } from './harness.js'

describe('many instances per role: state follows its partitions', () => {
  let system: System | undefined
  afterEach(async () => {
    await system?.stop()
    system = undefined
  })

  it('failover under load: 3 orchestrators, 2 inventory, 2 payment, 2 api; one orchestrator and one payment SIGKILLed mid-burst for good; every order ends once, verify is clean', async () => {
    // Supervised, as in production: a member fenced for a partition it still owns exits to rejoin fresh.
    system = new System({ PAYMENT_SUCCESS_RATE: '0.7', SAGA_RETRY_MIN_DELAY_MS: '200', SAGA_RETRY_MAX_DELAY_MS: '400' }, { supervise: true })
    system.port = await freePort()
    const port2 = await freePort()
    const s = system
    await Promise.all([
      ...['o1', 'o2', 'o3'].map((id) => s.startRole('orchestrator', {}, id)),
      ...['i1', 'i2'].map((id) => s.startRole('inventory', {}, id)),
      ...['p1', 'p2'].map((id) => s.startRole('payment', {}, id)),
      s.startRole('api', {}, 'a1'),
      s.startRole('api', { PORT: String(port2) }, 'a2'),
      s.startRole('notifier'),
    ])
    // Every orchestrator partition is owned before the burst, so the kill below takes work away.
    await waitFor(() => ['o1', 'o2', 'o3'].reduce((n, id) => n + owned(s, `orchestrator@${id}`).size, 0) === 8 && owned(s, 'orchestrator@o1').size > 0, 'the orchestrators to share all 8 partitions', 60_000)

    const ids: string[] = []
    const total = 500
    for (let i = 0; i < total; i += 25) {
      const batch = await Promise.all(Array.from({ length: 25 }, (_, j) => post((i + j) % 2 === 0 ? s.port : port2, { ...BODY, amount: 100 + i + j })))
      ids.push(...batch)
      if (i === 200) {
        await Promise.all([s.kill('orchestrator@o1', 'SIGKILL'), s.kill('payment@p1', 'SIGKILL')])
      }
    }
    expect(new Set(ids).size).toBe(total)
    await s.waitForFinals(ids, 240_000)
    // The survivors took the dead instances' partitions over.
    await waitFor(() => owned(s, 'orchestrator@o2').size + owned(s, 'orchestrator@o3').size === 8, 'o2 and o3 to own all 8 partitions')
    await waitFor(() => owned(s, 'payment@p2').size === 4, 'p2 to own all 4 payment partitions')
    const report = await verifyClean(s, total)
    expect(report.cancelled).toBeGreaterThan(0)
    // The only exits a survivor may take are the documented rejoins.
    for (const exit of s.unexpectedExits) expect(exit.tail.join('\n')).toMatch(/rejoining as a fresh member|could not commit/)

    // The same answer from either api instance, for an order placed through the other one.
    for (const id of ids.slice(0, 5)) {
      const [a, b] = await Promise.all([s.port, port2].map(async (port) => (await (await fetch(`http://127.0.0.1:${port}/orders/${id}`)).json()) as { status: string }))
      expect(a!.status).toMatch(/completed|cancelled/)
      expect(b).toEqual(a)
    }
  }, 400_000)

  it('timer failover: a saga waiting on a retry whose orchestrator dies for good retries on time on another instance', async () => {
    const delay = 6000
    system = new System({ SAGA_RETRY_MIN_DELAY_MS: String(delay), SAGA_RETRY_MAX_DELAY_MS: String(delay) })
    system.port = await freePort()
    const s = system
    await Promise.all([s.startRole('orchestrator', {}, 'o1'), s.startRole('orchestrator', {}, 'o2'), s.startRole('inventory'), s.startRole('payment'), s.startRole('api'), s.startRole('notifier')])
    await waitFor(() => owned(s, 'orchestrator@o1').size + owned(s, 'orchestrator@o2').size === 8 && owned(s, 'orchestrator@o1').size > 0 && owned(s, 'orchestrator@o2').size > 0, 'both orchestrators to own partitions', 60_000)

    await s.chaos('payment', '--fail', '1')
    const order = await post(s.port)
    const waiting = await waitFor(
      () => ['o1', 'o2'].find((id) => s.logs(`orchestrator@${id}`).some((l) => l.order_id === order && l.status === 'waiting_retry')),
      'the retry to be scheduled',
    )
    const failed = (await s.messagesOf('orderEvents', order)).find((m) => m.type === 'payment.failed')!
    await s.kill(`orchestrator@${waiting}`, 'SIGKILL')
    const killedAt = Date.now()

    const events = await s.waitForFinal(order, 60_000)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.retry-due', 'payment.succeeded', 'order.completed'])
    const survivor = waiting === 'o1' ? 'o2' : 'o1'
    expect(s.logs(`orchestrator@${survivor}`).some((l) => l.order_id === order && /retrying charge/.test(l.msg))).toBe(true)
    // Not before it was due, and soon after the dead member's session ran out.
    const charges = (await s.read('paymentCommands')).filter((m) => m.message?.order_id === order && m.message.type === 'charge_payment')
    expect(charges.map((c) => c.message!.payload.attempt)).toEqual([1, 2])
    const retriedAt = Number(charges[1]!.record.timestamp)
    expect(retriedAt).toBeGreaterThanOrEqual(Date.parse(failed.occurred_at as string) + delay - 50)
    expect(retriedAt - killedAt).toBeLessThan(delay + 20_000)
    await verifyClean(s, 1)
  })

  it('scaling: orchestrators go 1 → 3 → 1 under load; no saga is lost or stuck', async () => {
    system = new System({ SAGA_RETRY_MIN_DELAY_MS: '200', SAGA_RETRY_MAX_DELAY_MS: '400', PAYMENT_SUCCESS_RATE: '0.8' })
    system.port = await freePort()
    const s = system
    await Promise.all([s.startRole('orchestrator', {}, 'o1'), s.startRole('inventory'), s.startRole('payment'), s.startRole('api'), s.startRole('notifier')])
    await waitFor(() => owned(s, 'orchestrator@o1').size === 8, 'o1 to own all partitions', 60_000)

    const ids: string[] = []
    const placed: Promise<void>[] = []
    // An open-loop load generator: 5 orders every 125 ms (40/s), well under what one orchestrator
    // handles on two cores.
    const ticker = setInterval(() => placed.push(Promise.all(Array.from({ length: 5 }, () => post(s.port))).then((batch) => void ids.push(...batch))), 125)
    await waitFor(() => ids.length >= 50, 'load to build up')
    await Promise.all([s.startRole('orchestrator', {}, 'o2'), s.startRole('orchestrator', {}, 'o3')])
    await waitFor(() => owned(s, 'orchestrator@o2').size > 0 && owned(s, 'orchestrator@o3').size > 0 && owned(s, 'orchestrator@o1').size < 8, 'the work to spread over three', 60_000)
    const atThree = ids.length
    await waitFor(() => ids.length >= atThree + 50, 'load on three orchestrators')
    // A clean stop: each hands its partitions back with everything it decided published.
    expect(await s.kill('orchestrator@o2', 'SIGTERM')).toBe(0)
    expect(await s.kill('orchestrator@o3', 'SIGTERM')).toBe(0)
    await waitFor(() => owned(s, 'orchestrator@o1').size === 8, 'o1 to own all partitions again', 60_000)
    const atOne = ids.length
    await waitFor(() => ids.length >= atOne + 30, 'load on one orchestrator again')
    clearInterval(ticker)
    await Promise.all(placed)

    await s.waitForFinals(ids, 120_000)
    await verifyClean(s, ids.length)
  }, 400_000)

  it('cache loss: a deleted SQLite file is restored from the changelog, and a saga waiting on a timer goes on', async () => {
    system = new System({ SAGA_RETRY_MIN_DELAY_MS: '3000', SAGA_RETRY_MAX_DELAY_MS: '3000' })
    system.port = await freePort()
    const s = system
    await Promise.all(['orchestrator', 'inventory', 'payment', 'api', 'notifier'].map((r) => s.startRole(r as never)))
    const done = await Promise.all([post(s.port), post(s.port), post(s.port)])
    await s.waitForFinals(done)
    await s.chaos('payment', '--fail', '1')
    const pending = await post(s.port)
    await waitFor(() => s.logs('orchestrator').some((l) => l.order_id === pending && l.status === 'waiting_retry'), 'the retry to be scheduled')

    await s.kill('orchestrator', 'SIGKILL')
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(path.join(s.dataDir, `orchestrator.db${suffix}`), { force: true })
    await s.startRole('orchestrator')
    // The dead member holds its partitions until its session expires; then all 8 come back restored.
    const restored = await waitFor(() => {
      const lines = s.logs('orchestrator').filter((l) => l.msg.startsWith('partition assigned'))
      return new Set(lines.map((l) => l.partition)).size === 8 ? lines : undefined
    }, 'the restarted orchestrator to be assigned all 8 partitions')
    expect(restored.reduce((n, l) => n + (l.records as number), 0)).toBeGreaterThan(0)

    const events = await s.waitForFinal(pending, 30_000)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.retry-due', 'payment.succeeded', 'order.completed'])
    for (const id of done) {
      const shown = JSON.parse((await s.cli(['saga', 'show', id, '--json'])).stdout) as SagaReport
      expect(shown.outcome).toBe('completed')
    }
    // A duplicate of an old event changes nothing after the rebuild: its id came back with the state.
    const created = (await s.messagesOf('orderEvents', done[0]!))[0]!
    await s.bus.publish([{ topic: s.topics.orderEvents, key: created.order_id, value: JSON.stringify(created) }])
    await waitFor(() => s.logs('orchestrator').some((l) => l.msg === 'duplicate ignored' && l.message_id === created.message_id), 'the duplicate to be recognised')
    await verifyClean(s, 4)
  })
})
