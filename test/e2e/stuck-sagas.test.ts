import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { SagaReport } from '../../src/services/orchestrator/timeline.js'
import type { RetryResult } from '../../src/services/orchestrator/retry.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { System, waitFor } from './harness.js'

const BOUND = 2

describe(`a compensation never confirmed: stuck after ${BOUND} attempts, resumed by \`saga retry\``, () => {
  let system: System
  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_STEP_TIMEOUT_MS: '2000', SAGA_RETRY_MIN_DELAY_MS: '200', SAGA_RETRY_MAX_DELAY_MS: '300', SAGA_MAX_COMPENSATION_ATTEMPTS: String(BOUND) })
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('payment down while its charges are to be undone → stuck (show, verify, api say so); saga retry resumes one; payment back → both cancelled, verify clean', async () => {
    // Payment down: every charge times out, so the saga undoes the charge (its outcome unknown) — which payment, down, never confirms.
    await system.kill('payment', 'SIGTERM')
    const a = await system.postOrder()
    const b = await system.postOrder()

    for (const id of [a.order_id, b.order_id]) {
      await waitFor(async () => (await system.typesOf('orderEvents', id)).includes('saga.stuck'), `order ${id} to be stuck`, 60_000, 250)
    }
    // The orchestrator's timers (each timeout, each retry) are on order.events too; the saga's own events are these.
    const events = (await system.messagesOf('orderEvents', a.order_id)).filter((e) => e.type !== 'saga.step-timed-out' && e.type !== 'saga.retry-due')
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'saga.stuck'])
    expect(events[2]!.payload).toEqual({ step: 'charge_payment', attempt: BOUND, reason: `compensation of charge_payment (refund_payment) not confirmed after ${BOUND} attempts` })

    const shown = await system.cli(['saga', 'show', a.order_id, '--json'])
    expect(shown.code).toBe(0)
    const report = JSON.parse(shown.stdout) as SagaReport
    expect(report).toMatchObject({ status: 'stuck', outcome: null, step: 'charge_payment', attempt: BOUND, stuck_reason: events[2]!.payload.reason, reason: expect.stringMatching(/no reply to charge_payment/) })
    const text = await system.cli(['saga', 'show', a.order_id])
    expect(text.stdout).toContain('status STUCK')
    expect(text.stdout).toContain(`sagactl saga retry ${a.order_id}`)
    expect(system.logs('orchestrator').some((l) => l.level === 50 && l.order_id === a.order_id && /saga STUCK/.test(l.msg))).toBe(true)
    const order = (await (await fetch(`${system.url}/orders/${a.order_id}`)).json()) as { status: string; last_event: string }
    expect(order).toMatchObject({ status: 'pending', last_event: 'saga.stuck' })

    const listed = await system.cli(['saga', 'list', '--status', 'stuck', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    const stuckList = JSON.parse(listed.stdout) as { sagas: { order_id: string; status: string }[] }
    expect(stuckList.sagas.map((x) => x.order_id).sort()).toEqual([a.order_id, b.order_id].sort())
    expect(stuckList.sagas.every((x) => x.status === 'stuck')).toBe(true)

    const stuckVerify = await system.cli(['verify', '--json'])
    expect(stuckVerify.code).toBe(1)
    const stuckReport = JSON.parse(stuckVerify.stdout) as VerifyReport
    expect(stuckReport).toMatchObject({ orders: 2, unfinished: 2, stuck: 2 })
    expect(stuckReport.breaches.map((x) => [x.order_id, x.kind]).sort()).toEqual([[a.order_id, 'stuck'], [b.order_id, 'stuck']].sort())
    // Well after the last timeout would have fired: a stuck saga resends nothing.
    expect((await system.messagesOf('paymentCommands', b.order_id)).filter((c) => c.type === 'refund_payment').map((c) => c.payload.attempt)).toEqual([1, 2])

    const retried = await system.cli(['saga', 'retry', a.order_id, '--json', '--timeout', '60'])
    expect(retried.code, retried.stderr).toBe(0)
    const result = JSON.parse(retried.stdout) as RetryResult
    expect(result).toMatchObject({ order_id: a.order_id, outcome: 'resumed', status: 'compensating', step: 'charge_payment', attempt: BOUND + 1, attempts: BOUND })
    const request = (await system.messagesOf('orderEvents', a.order_id)).find((e) => e.type === 'saga.retry-requested')
    expect(request?.message_id).toBe(result.request_id)
    const resent = (await system.messagesOf('paymentCommands', a.order_id)).filter((c) => c.type === 'refund_payment')
    expect(resent.map((c) => c.payload.attempt)).toEqual([1, 2, 3])
    expect(resent[2]!.causation_id).toBe(result.request_id)

    // Back, payment answers its backlog (the charges, then their undos): b, still stuck, is settled by the late confirmation; a by whichever comes first.
    await system.startRole('payment')
    const finals = await system.waitForFinals([a.order_id, b.order_id], 60_000)
    expect([...finals.values()]).toEqual(['order.cancelled', 'order.cancelled'])
    const after = JSON.parse((await system.cli(['saga', 'show', a.order_id, '--json'])).stdout) as SagaReport
    expect(after).toMatchObject({ status: 'cancelled', outcome: 'cancelled', stuck_reason: null })
    expect(after.timeline.map((e) => e.type)).toEqual(expect.arrayContaining(['saga.stuck', 'saga.retry-requested', 'payment.refunded', 'inventory.reservation-cancelled', 'order.cancelled']))

    const notStuck = await system.cli(['saga', 'retry', b.order_id])
    expect(notStuck.code).toBe(1)
    // oclif wraps the message to the terminal's width, with a ›  at each line's start.
    expect(notStuck.stderr.replace(/\s+(›\s+)?/g, ' ')).toContain(`the saga of order ${b.order_id} is cancelled, not stuck: nothing to retry`)
    const unknown = await system.cli(['saga', 'retry', 'no-such-order'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/no saga/)

    const clean = await system.cli(['verify', '--json'])
    expect(clean.code, clean.stdout).toBe(0)
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, orders: 2, cancelled: 2, unfinished: 0, stuck: 0 })
    // The api and the notifier read saga.stuck and saga.retry-requested too: neither dead-lettered them.
    expect(await system.read('dlq')).toEqual([])
  })
})
