import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openDatabase, type Db } from '../../src/db/database.js'
import { event, type Message } from '../../src/envelope.js'
import { RoleMetrics } from '../../src/observe/metrics.js'
import { parsePrometheusText, samples, total } from '../../src/observe/prom-text.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import type { Decision, RoleHandler } from '../../src/runtime/role.js'
import { PAUSE_ACCEPTED, PAUSE_REQUESTED, RESUME_IGNORED, RESUME_REQUESTED, SAGA_STATUSES } from '../../src/saga/decide.js'

describe("the orchestrator's saga metrics", () => {
  let dir: string
  let db: Db
  let metrics: RoleMetrics
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-metrics-'))
    db = openDatabase(path.join(dir, 'orchestrator.db'))
    metrics = new RoleMetrics({ role: 'orchestrator', saga: orderSaga, db: db.$client, owned: () => null, endOffsets: async () => [], countRecords: async () => 0 })
  })
  afterEach(() => {
    db.$client.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const scrape = async () => parsePrometheusText(await metrics.metrics())
  const putSaga = (orderId: string, status: string) =>
    db.$client.prepare("INSERT INTO state (scope, key, value, updated_at) VALUES ('saga', ?, ?, 0)").run(orderId, JSON.stringify({ order_id: orderId, status }))

  it('given a paused and a running saga, then sagactl_sagas counts each, and lists every status of the engine at 0 otherwise', async () => {
    putSaga('o-1', 'paused')
    putSaga('o-2', 'running')
    const m = await scrape()
    expect(Object.fromEntries(samples(m, 'sagactl_sagas').map((s) => [s.labels.status, s.value]))).toEqual(Object.fromEntries(SAGA_STATUSES.map((s) => [s, s === 'paused' || s === 'running' ? 1 : 0])))
  })

  it('given the answers to a pause (accepted) and a resume (ignored), then sagactl_saga_requests_total counts each once its message is processed, and nothing for a duplicate', async () => {
    const answers: Record<string, string> = { [PAUSE_REQUESTED]: PAUSE_ACCEPTED, [RESUME_REQUESTED]: RESUME_IGNORED }
    const role: RoleHandler = {
      name: 'orchestrator',
      consumes: ['orderEvents'],
      handle: (message: Message): Decision => ({ messages: [{ topic: 'control', envelope: event(answers[message.type]!, { order_id: message.order_id, saga_id: message.saga_id, payload: {} }, 0, `answer-${message.message_id}`) }] }),
    }
    const observed = metrics.observeSagas(role)
    const request = (type: string, id: string): Message => ({ ...event(type, { order_id: 'o-1', saga_id: 's-1', payload: {} }, 0, id), type })
    const before = await scrape()
    expect(samples(before, 'sagactl_saga_requests_total').map((s) => `${s.labels.request}-${s.labels.answer}`).sort()).toEqual(
      ['cancel-accepted', 'cancel-ignored', 'pause-accepted', 'pause-ignored', 'resume-accepted', 'resume-ignored', 'retry-accepted', 'retry-refused'].sort(),
    )
    expect(total(before, 'sagactl_saga_requests_total')).toBe(0)

    observed.handle(request(PAUSE_REQUESTED, 'r-1'), undefined as never, undefined as never)
    metrics.handled(undefined, PAUSE_REQUESTED, 'processed', 0.001)
    observed.handle(request(RESUME_REQUESTED, 'r-2'), undefined as never, undefined as never)
    metrics.handled(undefined, RESUME_REQUESTED, 'processed', 0.001)
    observed.handle(request(RESUME_REQUESTED, 'r-2'), undefined as never, undefined as never)
    metrics.handled(undefined, RESUME_REQUESTED, 'duplicate', 0.001)

    const after = await scrape()
    expect(total(after, 'sagactl_saga_requests_total', { request: 'pause', answer: 'accepted' })).toBe(1)
    expect(total(after, 'sagactl_saga_requests_total', { request: 'resume', answer: 'ignored' })).toBe(1)
    expect(total(after, 'sagactl_saga_requests_total')).toBe(2)
  })
})
