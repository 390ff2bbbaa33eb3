import { describe, expect, it } from 'vitest'

import { latestSagas, renderSagaList, SAGA_LIST_STATUSES, selectSagas } from '../../../src/services/orchestrator/saga-list.js'
import { SAGA_STATUSES, type SagaState } from '../../../src/saga/decide.js'

const MIN = 60_000
const NOW = Date.parse('2030-01-01T12:00:00Z')

function saga(order: string, status: string, startedMinutesAgo: number, extra: Partial<SagaState> = {}): SagaState {
  const started = NOW - startedMinutesAgo * MIN
  return { order_id: order, saga_id: `saga-${order}`, order: {}, status: status as SagaState['status'], step: 'charge_payment', attempt: 1, done: [], compensated: [], started_at: started, updated_at: started, ...extra }
}

function record(key: string, value: unknown): { key: Buffer; value: Buffer | null } {
  return { key: Buffer.from(key), value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)) }
}

describe('latestSagas: the changelog folded as compaction would', () => {
  it('keeps the latest record per key', () => {
    const states = latestSagas([record('s|saga|a', saga('a', 'running', 3)), record('s|saga|b', saga('b', 'running', 2)), record('s|saga|a', saga('a', 'completed', 3))])
    expect(states.map((s) => [s.order_id, s.status])).toEqual([
      ['a', 'completed'],
      ['b', 'running'],
    ])
  })

  it('a tombstone deletes its saga; a later record brings it back', () => {
    expect(latestSagas([record('s|saga|a', saga('a', 'running', 1)), record('s|saga|a', null)])).toEqual([])
    expect(latestSagas([record('s|saga|a', null), record('s|saga|a', saga('a', 'running', 1))]).map((s) => s.order_id)).toEqual(['a'])
  })

  it('ignores processed ids, timers and other scopes on the same topic', () => {
    const states = latestSagas([record('p|saga|a', ['m1']), record('t|saga|a', { due_at: 1 }), record('s|other|a', saga('x', 'running', 1)), record('s|saga|b', saga('b', 'running', 1))])
    expect(states.map((s) => s.order_id)).toEqual(['b'])
  })

  it('an unreadable value hides only its own saga', () => {
    const states = latestSagas([record('s|saga|a', saga('a', 'running', 1)), record('s|saga|a', '{not json'), record('s|saga|b', saga('b', 'running', 1))])
    expect(states.map((s) => s.order_id)).toEqual(['b'])
  })
})

describe('selectSagas: filters, then newest first', () => {
  const states = [saga('old', 'running', 10), saga('new', 'completed', 1), saga('mid', 'waiting_retry', 5), saga('stuck', 'stuck', 30), saga('gone', 'cancelled', 7, { reason: 'out of stock' })]

  it('without filters: every saga, newest first', () => {
    const list = selectSagas(states, {}, NOW)
    expect(list.sagas.map((s) => s.order_id)).toEqual(['new', 'mid', 'gone', 'old', 'stuck'])
    expect(list.matched).toBe(5)
  })

  it('by one or several statuses, stuck included', () => {
    expect(selectSagas(states, { statuses: ['stuck'] }, NOW).sagas.map((s) => s.order_id)).toEqual(['stuck'])
    expect(selectSagas(states, { statuses: ['running', 'waiting_retry'] }, NOW).sagas.map((s) => s.order_id)).toEqual(['mid', 'old'])
  })

  it('a paused saga is listed by --status paused, and every status of the engine can be asked for', () => {
    const held = [...states, saga('held', 'paused', 3, { paused: { reason: 'address check', requested_by: 'api', at: NOW, request_id: 'r-1', was: 'waiting_retry' } })]
    expect(selectSagas(held, { statuses: ['paused'] }, NOW).sagas.map((s) => [s.order_id, s.status])).toEqual([['held', 'paused']])
    expect(SAGA_LIST_STATUSES).toEqual(SAGA_STATUSES)
  })

  it('--version keeps the sagas started under that version, by name or hash; a saga with no version recorded matches none', () => {
    const v1 = saga('v1-saga', 'running', 4, { version: { name: 'v1', hash: 'aaaaaaaaaaaa' } })
    const v2 = saga('v2-saga', 'running', 2, { version: { name: 'v2', hash: 'bbbbbbbbbbbb' } })
    const all = [v1, v2, saga('old', 'running', 9)]
    expect(selectSagas(all, { versions: ['v1'] }, NOW).sagas.map((s) => [s.order_id, s.version])).toEqual([['v1-saga', 'v1']])
    expect(selectSagas(all, { versions: ['bbbbbbbbbbbb'] }, NOW).sagas.map((s) => s.order_id)).toEqual(['v2-saga'])
    expect(selectSagas(all, { versions: ['v3'] }, NOW).matched).toBe(0)
  })

  it('--older-than counts from the start of the saga, the bound included', () => {
    expect(selectSagas(states, { olderThanMs: 7 * MIN }, NOW).sagas.map((s) => s.order_id)).toEqual(['gone', 'old', 'stuck'])
    expect(selectSagas(states, { olderThanMs: 7 * MIN + 1 }, NOW).sagas.map((s) => s.order_id)).toEqual(['old', 'stuck'])
  })

  it('--limit cuts after sorting and says how many matched', () => {
    const list = selectSagas(states, { limit: 2 }, NOW)
    expect(list.sagas.map((s) => s.order_id)).toEqual(['new', 'mid'])
    expect(list.matched).toBe(5)
    expect(renderSagaList(list)).toContain('… 3 more; raise --limit to see them')
  })

  it('a summary carries ISO times and the reason', () => {
    const [gone] = selectSagas(states, { statuses: ['cancelled'] }, NOW).sagas
    expect(gone).toEqual({ order_id: 'gone', saga_id: 'saga-gone', status: 'cancelled', step: 'charge_payment', attempt: 1, reason: 'out of stock', version: null, started_at: '2030-01-01T11:53:00.000Z', updated_at: '2030-01-01T11:53:00.000Z', finished_at: null })
  })

  it('says so when nothing matches', () => {
    expect(renderSagaList(selectSagas(states, { statuses: ['compensating'] }, NOW))).toBe('no saga matches')
  })
})
