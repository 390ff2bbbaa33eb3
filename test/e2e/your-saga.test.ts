import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { parseEnvelope, type Message } from '../../src/envelope.js'
import { caughtUp } from '../../src/ops/quiet.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { roleNames } from '../../src/saga/derive.js'
import { topicNames } from '../../src/topics.js'
import { buildDefinition } from '../saga/build-definition.js'
import { httpSaga } from '../saga/http-saga.js'
import { System, waitFor } from './harness.js'

interface Call {
  path: string
  key: string
  order_id: string
  attempt: number
}

/**
 * The services the saga's steps call. Like a real API it does the work once per idempotency key
 * and answers a repeated key with the first answer. The order's amount picks the behaviour:
 * 13, the courier declines; 7, the bank fails three times before it works.
 */
function startServices(): Promise<{ url: string; calls: Call[]; close(): Promise<void> }> {
  const calls: Call[] = []
  const answered = new Map<string, { status: number; body: unknown }>()
  const server = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => (raw += c.toString()))
    req.on('end', () => {
      const body = JSON.parse(raw) as { order_id: string; attempt: number; payload: { amount?: number } }
      const key = String(req.headers['idempotency-key'])
      const path = req.url ?? ''
      calls.push({ path, key, order_id: body.order_id, attempt: body.attempt })
      const answer = (status: number, payload: unknown): void => {
        if (status < 500) answered.set(`${path}|${key}`, { status, body: payload })
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
      }
      const earlier = answered.get(`${path}|${key}`)
      if (earlier) return answer(earlier.status, earlier.body)
      const amount = body.payload.amount
      if (path === '/charge' && amount === 7 && calls.filter((c) => c.path === '/charge' && c.key === key).length <= 3) return answer(503, { error: 'bank busy' })
      if (path === '/ship' && amount === 13) return answer(422, { reason: 'no courier for this address' })
      const ids: Record<string, string> = { '/hold': 'hold_id', '/charge': 'transfer_id', '/ship': 'parcel_id' }
      return answer(200, ids[path] ? { [ids[path]]: `${path.slice(1)}-${randomUUID().slice(0, 8)}` } : { done: true })
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({ url: `http://127.0.0.1:${port}`, calls, close: () => new Promise<void>((r) => server.close(() => r())) })
    })
  })
}

describe('your saga: a module outside src/, loaded with --saga, whose steps call an HTTP service', () => {
  let system: System
  let services: Awaited<ReturnType<typeof startServices>>
  let built: Awaited<ReturnType<typeof buildDefinition>> | undefined
  const topics = (prefix: string) => topicNames(prefix, httpSaga)
  const callsOf = (orderId: string) => services.calls.filter((c) => c.order_id === orderId)
  let completedOrder = ''

  beforeAll(async () => {
    services = await startServices()
    built = await buildDefinition('test/saga/http-saga.ts')
    // The saga's default is three attempts; only the bank's own policy (five) lets amount 7 through.
    system = await System.start(roleNames(httpSaga), { HTTP_SAGA_SERVICE: services.url, SAGA_MAX_ATTEMPTS: '3', SAGA_STEP_TIMEOUT_MS: '4000' }, { saga: built.module })
  })
  afterAll(async () => {
    await system?.stop()
    await services?.close()
    built?.remove()
  })

  const events = async (orderId: string): Promise<Message[]> => system.waitForFinal(orderId, 60_000)

  it('completes: each step calls its service once, with its own idempotency key, and the reply carries the service’s id', async () => {
    const order = await system.postOrder({ user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 100 })
    completedOrder = order.order_id
    const final = await events(order.order_id)

    expect(final.map((e) => e.type)).toEqual(['order.created', 'goods.held', 'money.taken', 'courier.booked', 'order.completed'])
    const calls = callsOf(order.order_id)
    expect(calls.map((c) => c.path)).toEqual(['/hold', '/charge', '/ship'])
    expect(new Set(calls.map((c) => c.key)).size).toBe(3)
    expect(final[2]!.payload.transfer_id).toMatch(/^charge-/)
    expect(final[1]!.payload.hold_id).toMatch(/^hold-/)
  })

  it('compensates newest first when a step declines: the refund, then the release, each called with its undo key', async () => {
    const order = await system.postOrder({ user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 13 })
    const final = await events(order.order_id)

    expect(final.map((e) => e.type)).toEqual(['order.created', 'goods.held', 'money.taken', 'courier.refused', 'money.returned', 'goods.released', 'order.cancelled'])
    expect(final.at(-1)!.payload.reason).toBe('no courier for this address')
    const calls = callsOf(order.order_id)
    expect(calls.map((c) => c.path)).toEqual(['/hold', '/charge', '/ship', '/refund', '/release'])
    const key = (path: string) => calls.find((c) => c.path === path)!.key
    expect(key('/refund')).not.toBe(key('/charge'))
  })

  it('retries a thrown error under the step’s own policy: four calls with one key, then done', async () => {
    const order = await system.postOrder({ user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 7 })
    const final = await events(order.order_id)

    expect(final.at(-1)!.type).toBe('order.completed')
    const charges = callsOf(order.order_id).filter((c) => c.path === '/charge')
    expect(charges.map((c) => c.attempt)).toEqual([1, 2, 3, 4])
    expect(new Set(charges.map((c) => c.key)).size).toBe(1)
    expect(final.filter((e) => e.type === 'money.refused').map((e) => e.payload.reason)).toEqual(['/charge answered 503', '/charge answered 503', '/charge answered 503'])
  })

  it('a duplicate command, or the same step sent again, makes no second call: the answer is repeated', async () => {
    const names = topics(system.prefix)
    const commands: { key: string; value: string; message: Message }[] = []
    await system.bus.read({
      topic: names.bankCommands,
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        if (parsed.ok && parsed.message.order_id === completedOrder && parsed.message.type === 'take_money') commands.push({ key: record.key!.toString(), value: record.value!.toString(), message: parsed.message })
      },
    })
    expect(commands).toHaveLength(1)
    const original = commands[0]!
    const resent = { ...original.message, message_id: randomUUID(), type: undefined }
    await system.bus.publish([
      { topic: names.bankCommands, key: original.key, value: original.value },
      { topic: names.bankCommands, key: original.key, value: JSON.stringify(resent) },
    ])
    const bank = [{ groupId: `${system.prefix}sagactl-bank`, topic: names.bankCommands }]
    await waitFor(async () => caughtUp(system.bus, bank), 'the bank to handle both', 30_000)

    expect(callsOf(completedOrder).filter((c) => c.path === '/charge')).toHaveLength(1)
    const taken = (await system.messagesOf('orderEvents', completedOrder)).filter((m) => m.type === 'money.taken')
    expect(taken.map((m) => m.payload.repeated ?? false)).toEqual([false, true])
    expect(taken[1]!.payload.transfer_id).toBe(taken[0]!.payload.transfer_id)
  })

  it('verify reads the saga from the same module and finds every order ended correctly', async () => {
    const result = await system.cli(['verify', '--json', '--wait-quiet', '30'])
    const report = JSON.parse(result.stdout) as VerifyReport
    expect(report.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, orders: 3, completed: 2, cancelled: 1 })
  })

  it('a retry policy changed while a saga is in flight: the orchestrator restarted with it carries the saga on, nothing refused', async () => {
    const order = await system.postOrder({ user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 7 })
    await waitFor(async () => (await system.messagesOf('orderEvents', order.order_id)).some((m) => m.type === 'money.refused'), 'the first refusal of the bank')
    await system.kill('orchestrator')
    await system.startRole('orchestrator', { HTTP_SAGA_BANK_ATTEMPTS: '6' })
    const final = await events(order.order_id)
    expect(final.at(-1)!.type).toBe('order.completed')
    expect(system.logs('orchestrator').filter((l) => String(l.msg).includes('saga definition mismatch'))).toEqual([])
    await system.kill('orchestrator')
    await system.startRole('orchestrator')
  })

  it('a role running a saga of another shape refuses its messages with an error that says so', async () => {
    await system.kill('courier')
    await system.startRole('courier', { HTTP_SAGA_COURIER_EFFECT: 'tracking_id' })
    const order = await system.postOrder({ user_id: 'u1', items: [{ sku: 'book', qty: 1 }], amount: 100 })

    const line = await waitFor(() => system.logs('courier').find((l) => l.level === 50 && String(l.msg).includes('saga definition mismatch') && l.order_id === order.order_id), 'the courier to refuse the command', 60_000)
    expect(line.msg).toMatch(/this message was made under definition [0-9a-f]{12}, courier runs [0-9a-f]{12}; give every role the same saga module/)
    const letters = await waitFor(async () => {
      const found: { reason: string; role: string }[] = []
      await system.bus.read({ topic: system.topics.dlq, handler: (r) => void found.push(JSON.parse(r.value!.toString()) as { reason: string; role: string }) })
      return found.filter((l) => l.role === 'courier' && l.reason.includes('saga definition mismatch')).length > 0 ? found : undefined
    }, 'the refused command on the dead-letter topic')
    expect(letters.some((l) => l.role === 'courier')).toBe(true)
    expect(callsOf(order.order_id).map((c) => c.path)).not.toContain('/ship')

    // The same module again: the step's next attempt goes through.
    await system.kill('courier')
    await system.startRole('courier')
    expect((await events(order.order_id)).at(-1)!.type).toBe('order.completed')
  })
})
