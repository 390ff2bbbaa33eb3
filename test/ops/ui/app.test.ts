import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'

import type { SagaFilter } from '../../../src/services/orchestrator/saga-list.js'
import { SagaNotFound, type SagaReport } from '../../../src/services/orchestrator/timeline.js'
import { buildUiApp } from '../../../src/ops/ui/app.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { noActions } from './fake-actions.js'

const report: SagaReport = {
  order_id: 'o1',
  saga_id: 's1',
  status: 'running',
  outcome: null,
  reason: null,
  stuck_reason: null,
  cancel_requested: null,
  paused: null,
  resumed: null,
  branches: null,
  deadline_at: null,
  version: null,
  step: 'reserve_inventory',
  attempt: 1,
  started_at: '2030-01-01T00:00:00.000Z',
  finished_at: null,
  timeline: [{ at: '2030-01-01T00:00:00.000Z', direction: 'in', topic: 'order.events', type: 'order.created', step: 'order', attempt: null, compensation: false, message_id: 'm1', causation_id: null, payload: {} }],
}

describe('the ui app: a static page and its read-only JSON routes', () => {
  let app: FastifyInstance
  const filters: SagaFilter[] = []

  beforeEach(async () => {
    filters.length = 0
    app = buildUiApp({
      saga: orderSaga,
      listSagas: async (filter) => {
        filters.push(filter)
        return { matched: 0, sagas: [] }
      },
      loadSaga: async (id) => {
        if (id !== 'o1') throw new SagaNotFound(`no saga with order or saga id ${id}`)
        return report
      },
      now: () => Date.parse('2030-01-01T00:00:05Z'),
      actions: noActions(),
      host: '127.0.0.1',
    })
    await app.ready()
  })
  afterEach(async () => {
    await app.close()
  })

  it('serves the page and its script', async () => {
    const page = await app.inject({ url: '/' })
    expect(page.headers['content-type']).toMatch(/text\/html/)
    expect(page.body).toContain('<script src="/timeline.js">')
    const script = await app.inject({ url: '/timeline.js' })
    expect(script.headers['content-type']).toMatch(/javascript/)
    expect(script.body).toContain('function drawLanes')
  })

  it('writes through POST routes only, each an action', () => {
    expect(app.printRoutes({ method: 'GET' })).toContain('sagas')
    expect(app.printRoutes({ method: 'POST', commonPrefix: false }).match(/\/(cancel|pause|resume|retry|replay)\b/g)?.sort()).toEqual(['/cancel', '/pause', '/replay', '/resume', '/retry'])
    for (const method of ['PUT', 'PATCH', 'DELETE'] as const) expect(app.printRoutes({ method }), method).toBe('(empty tree)')
  })

  it('passes the status filter on, and refuses an unknown status', async () => {
    expect((await app.inject({ url: '/api/sagas?status=stuck,waiting_retry' })).statusCode).toBe(200)
    expect(filters.at(-1)).toEqual({ statuses: ['stuck', 'waiting_retry'], limit: 200 })
    const bad = await app.inject({ url: '/api/sagas?status=sleeping' })
    expect(bad.statusCode).toBe(400)
    expect(filters).toHaveLength(1)
  })

  it('answers one saga with its swimlanes, live up to now; an unknown one with 404', async () => {
    const one = await app.inject({ url: '/api/sagas/o1' })
    expect(one.statusCode).toBe(200)
    expect(one.json()).toMatchObject({ report: { order_id: 'o1' }, lanes: { until: 5000, marks: [{ lane: 'api', type: 'order.created' }, { lane: 'notifier' }] } })
    const none = await app.inject({ url: '/api/sagas/nope' })
    expect(none.statusCode).toBe(404)
    expect(none.json().message).toMatch(/no saga .* nope/)
  })
})
