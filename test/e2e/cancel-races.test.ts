import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { parseEnvelope, type Message } from '../../src/envelope.js'
import type { Subscription } from '../../src/kafka/port.js'
import { cancelRequest } from '../../src/services/orchestrator/cancel.js'
import { owned, System, verifyClean, waitFor, type TopicMessage } from './harness.js'

const FINAL = new Set(['order.completed', 'order.cancelled'])
// The Kafka client's default request timeout.
const REQUEST_TIMEOUT_MS = 30_000

/** Publishes one saga.cancel-requested as `saga cancel` does, keyed by the order; returns its message_id. */
async function publishCancel(system: System, saga: { order_id: string; saga_id: string }, reason: string): Promise<string> {
  const request = cancelRequest(saga, reason, 'cancel-races test')
  await system.bus.publish([{ topic: system.topics.orderEvents, key: request.order_id, value: JSON.stringify(request) }])
  return request.message_id
}

/** The orchestrator's answers on sagactl.control, by the request they answer: each answer once, however often it was published. */
function answersByRequest(control: TopicMessage[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>()
  for (const { message } of control) {
    if (!message?.causation_id || !message.type.startsWith('saga.cancel-')) continue
    const answers = out.get(message.causation_id) ?? new Map<string, string>()
    answers.set(message.message_id, message.type)
    out.set(message.causation_id, answers)
  }
  return out
}

/** Every distinct answer type published for each cancel request, copies included. */
function answerCopies(control: TopicMessage[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const { message } of control) {
    if (!message?.causation_id || !message.type.startsWith('saga.cancel-')) continue
    const types = out.get(message.causation_id) ?? []
    if (!types.includes(message.type)) types.push(message.type)
    out.set(message.causation_id, types)
  }
  return out
}

/** Each order's events in log order (one order lives in one partition), repeats of a message_id dropped. */
function eventsByOrder(all: TopicMessage[]): Map<string, Message[]> {
  const out = new Map<string, Message[]>()
  const seen = new Set<string>()
  for (const { message } of [...all].sort((a, b) => (a.record.offset < b.record.offset ? -1 : 1))) {
    if (!message || seen.has(message.message_id)) continue
    seen.add(message.message_id)
    out.set(message.order_id, [...(out.get(message.order_id) ?? []), message])
  }
  return out
}

describe('a cancel racing the saga\'s last reply: the one first in the log wins, and the saga ends once', () => {
  let system: System
  let tail: Subscription | undefined
  beforeAll(async () => {
    system = await System.start()
  })
  afterAll(async () => {
    await tail?.close()
    await system?.stop()
  })

  it('cancels published from 0 to 3 s after each saga reserved (its charge in flight), the first four while payment is frozen → before the charge\'s reply: cancelled, the charge and the reservation undone; after it: completed, the cancel ignored and nothing undone; verify clean', async () => {
    const ORDERS = 32
    // Wide enough that the last cancels come after the final event even on a loaded machine, where
    // payment's reply can take over a second.
    const SPREAD_MS = 3_000
    const FROZEN_PAYMENT = 4
    const placed = new Map<string, { order_id: string; saga_id: string; delayMs: number }>()
    const reserved = new Set<string>()
    const requests = new Map<string, string>()
    const publishing: Promise<void>[] = []
    // The orchestrator sends the charge as it reads inventory.reserved; the test reads it too and
    // then waits a delay of its own per order, so the cancels land all around payment's reply and
    // the order.completed that follows it.
    const schedule = (orderId: string): void => {
      const saga = placed.get(orderId)
      // The reservation can be read before the POST's answer is: whichever comes second schedules.
      if (!saga || !reserved.has(orderId) || requests.has(orderId)) return
      requests.set(orderId, '')
      publishing.push(
        new Promise<void>((resolve) => setTimeout(resolve, saga.delayMs)).then(async () => {
          requests.set(orderId, await publishCancel(system, saga, 'race'))
        }),
      )
    }
    tail = await system.bus.tail({
      topic: system.topics.orderEvents,
      fromOffsets: await system.bus.endOffsets(system.topics.orderEvents),
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        if (!parsed.ok || parsed.message.type !== 'inventory.reserved') return
        reserved.add(parsed.message.order_id)
        schedule(parsed.message.order_id)
      },
    })
    // The first few are cancelled while payment is frozen, so their cancels come before the
    // charge's reply however slow this machine is; the rest race it on timing alone.
    const payment = system.roles.get('payment')!
    payment.child.kill('SIGSTOP')
    try {
      for (let i = 0; i < FROZEN_PAYMENT; i++) {
        const saga = await system.postOrder()
        placed.set(saga.order_id, { ...saga, delayMs: 0 })
        schedule(saga.order_id)
      }
      await waitFor(() => publishing.length === FROZEN_PAYMENT, 'the first sagas to reserve while payment is frozen')
      await Promise.all(publishing)
      await waitFor(async () => {
        const answers = answersByRequest(await system.read('control'))
        return [...requests.values()].every((r) => answers.has(r))
      }, 'the orchestrator to answer the cancels sent while payment is frozen')
    } finally {
      payment.child.kill('SIGCONT')
    }
    for (let i = FROZEN_PAYMENT; i < ORDERS; i++) {
      const saga = await system.postOrder()
      placed.set(saga.order_id, { ...saga, delayMs: Math.round(((i - FROZEN_PAYMENT) * SPREAD_MS) / (ORDERS - FROZEN_PAYMENT - 1)) })
      schedule(saga.order_id)
    }
    const ids = [...placed.keys()]
    await waitFor(() => publishing.length === ORDERS, 'every saga to reserve, so that its cancel is scheduled')
    await Promise.all(publishing)
    await system.waitForFinals(ids)
    const answered = await waitFor(async () => {
      const answers = answersByRequest(await system.read('control'))
      return [...requests.values()].every((r) => answers.has(r)) ? answers : undefined
    }, 'the orchestrator to answer every cancel request')

    const events = eventsByOrder(await system.read('orderEvents'))
    const commands = eventsByOrder([...(await system.read('paymentCommands')), ...(await system.read('inventoryCommands'))])
    const outcomes = { cancelled: 0, completed: 0, afterTheReplyBeforeTheFinal: 0 }
    for (const orderId of ids) {
      const log = events.get(orderId)!
      const types = log.map((e) => e.type)
      const finals = log.filter((e) => FINAL.has(e.type))
      expect(finals, orderId).toHaveLength(1)
      const request = requests.get(orderId)!
      const cancelAt = log.findIndex((e) => e.message_id === request)
      const repliedAt = types.indexOf('payment.succeeded')
      expect(cancelAt, orderId).toBeGreaterThan(types.indexOf('inventory.reserved'))
      const answers = [...answered.get(request)!.values()]
      const sent = (commands.get(orderId) ?? []).map((c) => c.type).sort()
      // What decides is the saga's last reply, not its final event: a cancel read after
      // payment.succeeded finds the saga completed even when order.completed lands after it.
      if (repliedAt === -1 || cancelAt < repliedAt) {
        outcomes.cancelled++
        expect(finals[0]!.type, orderId).toBe('order.cancelled')
        expect(finals[0]!.payload.reason).toBe('cancelled by request: race')
        expect(answers).toEqual(['saga.cancel-accepted'])
        expect(sent, orderId).toEqual(['cancel_reservation', 'charge_payment', 'refund_payment', 'reserve_inventory'])
        const charged = log.filter((e) => e.type === 'payment.succeeded').map((e) => e.payload.payment_id)
        const refunded = log.filter((e) => e.type === 'payment.refunded').map((e) => e.payload.payment_id)
        expect(new Set(refunded), orderId).toEqual(new Set(charged.length === 0 ? [null] : charged))
      } else {
        outcomes.completed++
        if (cancelAt < types.indexOf('order.completed')) outcomes.afterTheReplyBeforeTheFinal++
        expect(finals[0]!.type, orderId).toBe('order.completed')
        expect(answers).toEqual(['saga.cancel-ignored'])
        expect(sent, orderId).toEqual(['charge_payment', 'reserve_inventory'])
        expect(types.filter((t) => t === 'payment.refunded' || t === 'inventory.reservation-cancelled')).toEqual([])
      }
    }
    // Both sides of the race were run: the earliest cancels beat the charge's reply, the latest came after the final event.
    expect(outcomes.cancelled, JSON.stringify(outcomes)).toBeGreaterThanOrEqual(FROZEN_PAYMENT)
    expect(outcomes.completed, JSON.stringify(outcomes)).toBeGreaterThan(0)
    const report = await verifyClean(system, ORDERS)
    expect(report).toMatchObject({ completed: outcomes.completed, cancelled: outcomes.cancelled })
  }, 180_000)
})

describe('a zombie orchestrator that holds cancel requests changes no outcome', () => {
  let system: System | undefined
  afterEach(async () => {
    // A frozen process ignores SIGTERM until it runs again.
    for (const rp of system?.roles.values() ?? []) rp.child.kill('SIGCONT')
    await system?.stop()
    system = undefined
  })

  it('an orchestrator frozen (SIGSTOP) past its session right after it took a cancel, with more cancels for its sagas arriving, is woken under load → every saga ends once, each cancel is answered once, verify clean', async () => {
    system = new System({ PAYMENT_SUCCESS_RATE: '0.6', SAGA_RETRY_MIN_DELAY_MS: '300', SAGA_RETRY_MAX_DELAY_MS: '600' }, { supervise: true })
    system.port = await freePort()
    const s = system
    const frozen = 'orchestrator@z1'
    const sibling = 'orchestrator@z2'
    // Frozen once it has committed its handling of a cancel (the saga's compensation and its
    // answer in its file) and before it publishes any of it.
    await Promise.all([
      s.startRole('orchestrator', { SAGA_CRASH_AT: 'after-commit', SAGA_CRASH_ON: 'saga.cancel-requested', SAGA_CRASH_SIGNAL: 'SIGSTOP' }, 'z1'),
      s.startRole('orchestrator', {}, 'z2'),
      ...(['inventory', 'payment', 'api', 'notifier'] as const).map((r) => s.startRole(r)),
    ])
    await waitFor(() => owned(s, frozen).size + owned(s, sibling).size === 8 && owned(s, frozen).size > 0 && owned(s, sibling).size > 0, 'both orchestrators to own partitions', 60_000)

    // Open-loop load through the api; every third order is cancelled 0 to 1.2 s after it was
    // placed, so cancels find sagas running, waiting for a retry, compensating and ended.
    const ids: string[] = []
    const requests = new Map<string, string>()
    const pending: Promise<void>[] = []
    let n = 0
    // A supervised restart replaces the role's entry: keep the zombie's own process.
    const zombie = s.roles.get(frozen)!
    const ticker = setInterval(() => {
      for (let k = 0; k < 4; k++) {
        const i = n++
        pending.push(
          s.postOrder().then(async (saga) => {
            ids.push(saga.order_id)
            if (i % 3 !== 0) return
            await new Promise((resolve) => setTimeout(resolve, (i % 5) * 300))
            requests.set(saga.order_id, await publishCancel(s, saga, 'zombie'))
          }),
        )
      }
    }, 200)
    try {
      await waitFor(() => s.logs(frozen).some((l) => l.msg === 'crash point reached; freezing'), `${frozen} to freeze on a cancel`, 60_000)
      const frozenAt = Date.now()
      const requestsAtFreeze = requests.size
      // Past the session timeout the sibling takes every partition, restores it from the
      // changelog and fences the frozen instance; the cancels on its partitions wait till then.
      await waitFor(() => owned(s, sibling).size === 8, `${sibling} to take over all 8 partitions`, 60_000)
      await waitFor(() => requests.size >= requestsAtFreeze + 15, 'cancels handled by the sibling alone')
      // Frozen past the client's request timeout too, so that, woken, its requests in flight have
      // timed out and its stream may be replaced while it still believes it owns its partitions,
      // whose committed offsets the sibling has moved on. (The fault's length, not a wait for an event.)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, frozenAt + REQUEST_TIMEOUT_MS + 2_000 - Date.now())))
      zombie.child.kill('SIGCONT')
      const woken = ids.length
      await waitFor(() => ids.length >= woken + 60, 'load after the wake-up')
    } finally {
      clearInterval(ticker)
      await Promise.all(pending)
    }

    await s.waitForFinals(ids, 120_000)
    const answered = await waitFor(async () => {
      const answers = answersByRequest(await s.read('control'))
      return [...requests.values()].every((r) => answers.has(r)) ? answers : undefined
    }, 'the orchestrator to answer every cancel request', 60_000)
    // The zombie's copy of an answer, if it published one, is the same message: one answer per
    // request, and every copy of it says the same.
    const copies = answerCopies(await s.read('control'))
    for (const [orderId, request] of requests) {
      expect([...answered.get(request)!.keys()], orderId).toHaveLength(1)
      expect(copies.get(request), orderId).toHaveLength(1)
    }
    const events = eventsByOrder(await s.read('orderEvents'))
    let accepted = 0
    for (const [orderId, request] of requests) {
      const final = events.get(orderId)!.filter((e) => FINAL.has(e.type))
      expect(final, orderId).toHaveLength(1)
      const answer = [...answered.get(request)!.values()][0]
      if (answer === 'saga.cancel-accepted') {
        accepted++
        expect(final[0]!.type, orderId).toBe('order.cancelled')
        expect(final[0]!.payload.reason, orderId).toBe('cancelled by request: zombie')
      } else {
        expect(answer, orderId).toBe('saga.cancel-ignored')
        expect(final[0]!.payload.reason, orderId).not.toBe('cancelled by request: zombie')
      }
    }
    expect(accepted).toBeGreaterThan(0)
    // verify fails on a second final event, a double charge or reservation, an effect left
    // standing on a cancelled order, and one message_id with two bodies.
    await verifyClean(s, ids.length)
    // The woken instance learnt that its partitions had moved: it was refused, or told, or left.
    const lines = zombie.lines
    const after = lines.slice(lines.findIndex((l) => l.msg === 'crash point reached; freezing') + 1)
    expect(after.map((l) => l.msg).find((m) => /fenced|revoked|rejoin/i.test(m))).toBeDefined()
  }, 300_000)
})
