import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'

import { buildUiApp } from '../../../src/ops/ui/app.js'
import { ActionFailed, type ActionRecord } from '../../../src/ops/ui/actions.js'
import { SagaNotFound } from '../../../src/services/orchestrator/timeline.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { fakeActions, type Call } from './fake-actions.js'

const record = (call: Call): ActionRecord => ({
  action: call.action as ActionRecord['action'],
  wrote: [{ topic: 'order.events', key: String(call.args[0]), value: { event_type: `saga.${call.action}-requested`, message_id: 'r1', payload: { reason: call.args[1] } } }],
  answer: { type: `saga.${call.action}-accepted`, event_type: `saga.${call.action}-accepted`, order_id: String(call.args[0]), saga_id: 's1', message_id: 'a1', causation_id: 'r1', payload: { status: 'compensating' } },
  result: { outcome: 'ok' },
})

describe('the ui app: actions, allowed by the bound address and SAGA_UI_TOKEN', () => {
  let app: FastifyInstance
  afterEach(async () => {
    await app?.close()
  })

  async function build(host: string, token?: string, answer: (call: Call) => ActionRecord | Promise<ActionRecord> = record) {
    const fake = fakeActions(answer)
    app = buildUiApp({
      saga: orderSaga,
      listSagas: async () => ({ matched: 0, sagas: [] }),
      loadSaga: async (id) => {
        throw new SagaNotFound(id)
      },
      now: () => 0,
      actions: fake.actions,
      host,
      token,
    })
    await app.ready()
    return fake.calls
  }
  const post = (url: string, body: unknown = {}, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload: body as object, headers: { 'content-type': 'application/json', ...headers } })

  it('on 127.0.0.1 without a token: allowed; the cancel calls the action with the reason and answers what it wrote and the answer', async () => {
    const calls = await build('127.0.0.1')
    expect((await app.inject({ url: '/api/actions' })).json()).toEqual({ enabled: true, token_required: false })
    const answer = await post('/api/sagas/o1/cancel', { reason: 'customer asked' })
    expect(answer.statusCode).toBe(200)
    expect(calls).toEqual([{ action: 'cancel', args: ['o1', 'customer asked'] }])
    expect(answer.json()).toMatchObject({ action: 'cancel', wrote: [{ value: { event_type: 'saga.cancel-requested', message_id: 'r1' } }], answer: { type: 'saga.cancel-accepted', causation_id: 'r1' } })
    // An empty body is a cancel without a reason.
    expect((await app.inject({ method: 'POST', url: '/api/sagas/o2/cancel' })).statusCode).toBe(200)
    expect(calls.at(-1)).toEqual({ action: 'cancel', args: ['o2', ''] })
  })

  it('pause, resume, retry and replay call their own action with the id (and the reason)', async () => {
    const calls = await build('127.0.0.1')
    expect((await post('/api/sagas/o1/pause', { reason: 'address check' })).statusCode).toBe(200)
    expect((await post('/api/sagas/o1/resume')).statusCode).toBe(200)
    expect((await post('/api/sagas/o1/retry')).statusCode).toBe(200)
    expect((await post('/api/dead-letters/d1/replay')).statusCode).toBe(200)
    expect(calls).toEqual([
      { action: 'pause', args: ['o1', 'address check'] },
      { action: 'resume', args: ['o1', ''] },
      { action: 'retry', args: ['o1'] },
      { action: 'replay', args: ['d1'] },
    ])
  })

  it('bound to 0.0.0.0 without SAGA_UI_TOKEN: read-only; every action is refused with 403 and nothing is called', async () => {
    const calls = await build('0.0.0.0')
    expect((await app.inject({ url: '/api/actions' })).json()).toMatchObject({ enabled: false, token_required: false, reason: expect.stringContaining('0.0.0.0') })
    for (const url of ['/api/sagas/o1/cancel', '/api/sagas/o1/pause', '/api/sagas/o1/resume', '/api/sagas/o1/retry', '/api/dead-letters/d1/replay']) {
      const refused = await post(url, {}, { 'x-sagactl-token': 'anything' })
      expect(refused.statusCode, url).toBe(403)
      expect(refused.json().message).toMatch(/actions are off.*SAGA_UI_TOKEN/)
    }
    expect(calls).toEqual([])
  })

  it('with SAGA_UI_TOKEN, on any address: no token 401, a wrong one 403, the right one goes through', async () => {
    for (const host of ['0.0.0.0', '127.0.0.1']) {
      const calls = await build(host, 's3cret-token')
      expect((await app.inject({ url: '/api/actions' })).json()).toEqual({ enabled: true, token_required: true })
      expect((await post('/api/sagas/o1/cancel')).statusCode, host).toBe(401)
      expect((await post('/api/sagas/o1/cancel', {}, { 'x-sagactl-token': 's3cret-tokem' })).statusCode, host).toBe(403)
      expect((await post('/api/sagas/o1/cancel', {}, { 'x-sagactl-token': 's3cret' })).statusCode, host).toBe(403)
      // A cookie is not a token: a browser would send it for any site's form.
      expect((await post('/api/sagas/o1/cancel', {}, { cookie: 'x-sagactl-token=s3cret-token' })).statusCode, host).toBe(401)
      expect(calls).toEqual([])
      expect((await post('/api/sagas/o1/cancel', {}, { 'x-sagactl-token': 's3cret-token' })).statusCode, host).toBe(200)
      expect(calls).toHaveLength(1)
      await app.close()
    }
  })

  it("refuses another site's page: a cross-origin POST, or a name other than loopback's in Host without a token", async () => {
    const calls = await build('127.0.0.1')
    expect((await post('/api/sagas/o1/cancel', {}, { origin: 'https://evil.example' })).statusCode).toBe(403)
    expect((await post('/api/sagas/o1/cancel', {}, { origin: 'null' })).statusCode).toBe(403)
    // DNS rebinding: evil.example resolving to 127.0.0.1 makes the browser call it same-origin.
    expect((await post('/api/sagas/o1/cancel', {}, { host: 'evil.example:3900', origin: 'http://evil.example:3900' })).statusCode).toBe(403)
    expect(calls).toEqual([])
    expect((await post('/api/sagas/o1/cancel', {}, { host: '127.0.0.1:3900', origin: 'http://127.0.0.1:3900' })).statusCode).toBe(200)
    expect(calls).toHaveLength(1)
  })

  it('400 for a bad body, naming the field, before anything is called', async () => {
    const calls = await build('127.0.0.1')
    const cases: [string, unknown, RegExp][] = [
      ['/api/sagas/o1/cancel', { reason: 'x'.repeat(501) }, /reason/],
      ['/api/sagas/o1/cancel', { reason: 7 }, /reason/],
      ['/api/sagas/o1/cancel', { why: 'typo' }, /why is not a known field/],
      ['/api/sagas/o1/retry', { force: true }, /force is not a known field/],
      ['/api/sagas/o1/pause', { reason: ['a'] }, /reason/],
      ['/api/sagas/o1/cancel', [], /body/],
    ]
    for (const [url, body, message] of cases) {
      const bad = await post(url, body)
      expect(bad.statusCode, JSON.stringify(body)).toBe(400)
      expect(bad.json().message).toMatch(message)
    }
    expect(calls).toEqual([])
  })

  it("answers an action's refusal with its status and what was written before it: 404, 409, 504", async () => {
    const refusals = [
      new ActionFailed(404, 'no saga with order or saga id nope'),
      new ActionFailed(409, 'the saga of order o1 has already ended: completed; nothing changed'),
      new ActionFailed(504, 'the orchestrator did not answer within 30 s', [{ topic: 'order.events', key: 'o1', value: { message_id: 'r9' } }]),
    ]
    await build('127.0.0.1', undefined, () => {
      throw refusals.shift()!
    })
    const notFound = await post('/api/sagas/nope/cancel')
    expect([notFound.statusCode, notFound.json()]).toEqual([404, { statusCode: 404, error: 'Not Found', message: 'no saga with order or saga id nope', wrote: [] }])
    const ended = await post('/api/sagas/o1/cancel')
    expect([ended.statusCode, ended.json().error, ended.json().message]).toEqual([409, 'Conflict', 'the saga of order o1 has already ended: completed; nothing changed'])
    const silent = await post('/api/sagas/o1/retry')
    expect([silent.statusCode, silent.json().wrote]).toEqual([504, [{ topic: 'order.events', key: 'o1', value: { message_id: 'r9' } }]])
  })
})
