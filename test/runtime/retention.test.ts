import { describe, expect, it } from 'vitest'

import { orderSaga } from '../../src/order-saga/saga.js'
import { event, type Message } from '../../src/envelope.js'
import { pruneIntervalMs, retentionWarnings, sentOutboxKeepMs, tombstoneKeys, tooOldToTrust, verdict, type Entry, type RetentionRule } from '../../src/runtime/retention.js'
import { DEFAULT_ORDER_LIMITS } from '../../src/order-schema.js'
import { apiRole } from '../../src/services/api/orders.js'
import { orchestratorRole } from '../../src/services/orchestrator/role.js'
import { decideParticipant, inventorySpec, NO_CHAOS, participantRole } from '../../src/services/participant.js'
import { policy } from '../services/orchestrator/given.js'

const DAY = 86_400_000
const NOW = 100 * DAY
const saga = (status: string) => ({ status })
const entry = (over: Partial<Entry> = {}): Entry => ({ key: 'o-1', states: [], lastProcessedAt: NOW - 2 * DAY, hasTimer: false, ...over })
const orchestrator: RetentionRule = { retentionMs: DAY, settled: orchestratorRole(orderSaga, policy, DEFAULT_ORDER_LIMITS).settled! }

describe('retention: which entries may be forgotten', () => {
  it('given a completed saga idle for longer than SAGA_RETENTION, then it is forgotten, state and processed ids together', () => {
    const e = entry({ states: [{ scope: 'saga', value: saga('completed'), updatedAt: NOW - 2 * DAY }] })
    expect(verdict(e, NOW, orchestrator)).toEqual({ forget: true })
    expect(tombstoneKeys(e)).toEqual(['s|saga|o-1', 'p|o-1'])
  })

  it('given a finished saga touched within SAGA_RETENTION (a late reply), then it is kept', () => {
    const e = entry({ states: [{ scope: 'saga', value: saga('cancelled'), updatedAt: NOW - 2 * DAY }], lastProcessedAt: NOW - 1000 })
    expect(verdict(e, NOW, orchestrator)).toEqual({ forget: false, why: 'recent' })
  })

  it.each(['running', 'waiting_retry', 'compensating'])('given a %s saga, however old, then it is kept', (status) => {
    expect(verdict(entry({ states: [{ scope: 'saga', value: saga(status), updatedAt: 0 }] }), NOW, orchestrator)).toEqual({ forget: false, why: 'unsettled' })
  })

  it('given an entry with a pending timer, then it is kept even when its state says finished', () => {
    const e = entry({ states: [{ scope: 'saga', value: saga('completed'), updatedAt: 0 }], hasTimer: true })
    expect(verdict(e, NOW, orchestrator)).toEqual({ forget: false, why: 'timer' })
  })

  it('given only processed ids (a reply for an unknown saga, a dead-lettered position), then idle time alone decides, and only p| is tombstoned', () => {
    const e = entry()
    expect(verdict(e, NOW, orchestrator)).toEqual({ forget: true })
    expect(tombstoneKeys(e)).toEqual(['p|o-1'])
  })

  it("given a participant, then an effect is forgotten once idle, and the role's chaos never", () => {
    const rule: RetentionRule = { retentionMs: DAY, settled: participantRole(inventorySpec, { successRate: 1, allowChaos: true }).settled! }
    expect(verdict(entry({ states: [{ scope: 'effect', value: { status: 'held' }, updatedAt: 0 }] }), NOW, rule)).toEqual({ forget: true })
    expect(verdict(entry({ key: 'inventory', states: [{ scope: 'chaos', value: NO_CHAOS, updatedAt: 0 }] }), NOW, rule)).toEqual({ forget: false, why: 'unsettled' })
  })

  it("given the api, then a pending order's view is kept, a finished one goes, and an Idempotency-Key's record waits for its TTL plus SAGA_RETENTION", () => {
    const rule: RetentionRule = { retentionMs: DAY, settled: apiRole(DEFAULT_ORDER_LIMITS, { retentionMs: DAY, idempotencyTtlMs: 3 * DAY }).settled! }
    const view = (status: string) => ({ scope: 'order', value: { status }, updatedAt: 0 })
    const key = (createdAt: number) => ({ scope: 'idempotency-key', value: { created_at: createdAt }, updatedAt: 0 })
    expect(verdict(entry({ states: [view('pending')] }), NOW, rule).forget).toBe(false)
    expect(verdict(entry({ states: [view('completed')] }), NOW, rule).forget).toBe(true)
    expect(verdict(entry({ states: [view('completed'), key(NOW - 3 * DAY)] }), NOW, rule).forget).toBe(false)
    expect(verdict(entry({ states: [view('completed'), key(NOW - 4 * DAY)] }), NOW, rule).forget).toBe(true)
  })
})

describe('retention: messages too old to trust the inbox with', () => {
  const created = (ageMs: number): Message => ({ ...event('order.created', { order_id: 'o-1', saga_id: 's-1', payload: { user_id: null, items: [{ sku: 'a', qty: 1 }], amount: 5 } }, NOW - ageMs, 'm-1'), type: 'order.created' })

  it('given an order.created older than SAGA_RETENTION and no saga, when the orchestrator handles it, then no saga starts and it says why', () => {
    const rows = new Map<string, unknown>()
    const store = { get: <T>(s: string, k: string) => rows.get(`${s}/${k}`) as T | undefined, put: (s: string, k: string, v: unknown) => void rows.set(`${s}/${k}`, v) }
    const role = orchestratorRole(orderSaga, policy, DEFAULT_ORDER_LIMITS, DAY)
    const d = role.handle(created(DAY + 1), store, { now: NOW, newId: () => 'x', random: () => 0 })
    expect(d.messages ?? []).toEqual([])
    expect(rows.size).toBe(0)
    expect(d.notices?.[0]?.msg).toMatch(/older than SAGA_RETENTION ignored/)
    // Within SAGA_RETENTION it is an order like any other.
    expect(role.handle(created(DAY - 1), store, { now: NOW, newId: () => 'x', random: () => 0 }).messages?.map((m) => m.envelope.command_type)).toEqual(['reserve_inventory'])
  })

  it('given a reserve_inventory older than SAGA_RETENTION for an effect not known, then nothing is reserved; one already held is answered as before', () => {
    const { event_type: _e, ...rest } = created(DAY + 1)
    const command: Message = { ...rest, type: 'reserve_inventory', command_type: 'reserve_inventory', payload: { items: [], attempt: 1 } }
    const ctx = { now: NOW, newId: () => 'r-1', random: () => 0 }
    const options = { successRate: 1, allowChaos: false, retentionMs: DAY }
    const fresh = decideParticipant(inventorySpec, options, { chaos: NO_CHAOS }, command, ctx)
    expect(fresh.effect).toBeUndefined()
    expect(fresh.messages).toEqual([])
    const held = decideParticipant(inventorySpec, options, { chaos: NO_CHAOS, effect: { effect_id: 'r-0', status: 'held', payload: {}, at: 0 } }, command, ctx)
    expect(held.messages.map((m) => m.envelope.payload)).toEqual([expect.objectContaining({ reservation_id: 'r-0', repeated: true })])
  })

  it('given no occurred_at, or no retention, then a message is trusted as before', () => {
    const { occurred_at: _gone, ...bare } = created(10 * DAY)
    expect(tooOldToTrust(bare, NOW, DAY)).toBe(false)
    expect(tooOldToTrust(created(10 * DAY), NOW, undefined)).toBe(false)
    expect(tooOldToTrust(created(10 * DAY), NOW, DAY)).toBe(true)
  })
})

describe('retention: settings', () => {
  it('keeps sent outbox rows for SAGA_RETENTION, at most 10 minutes; prunes every quarter of SAGA_RETENTION, between 1 s and a minute', () => {
    expect(sentOutboxKeepMs(30_000)).toBe(30_000)
    expect(sentOutboxKeepMs(7 * DAY)).toBe(600_000)
    expect(pruneIntervalMs(30_000)).toBe(7_500)
    expect(pruneIntervalMs(7 * DAY)).toBe(60_000)
    expect(pruneIntervalMs(100)).toBe(1_000)
  })

  it("warns when SAGA_RETENTION is shorter than an input topic's retention.ms, or the topic keeps records for ever", () => {
    expect(retentionWarnings(7 * DAY, [{ topic: 'order.events', retentionMs: 7 * DAY }])).toEqual([])
    const [shorter, forever] = retentionWarnings(DAY, [
      { topic: 'order.events', retentionMs: 7 * DAY },
      { topic: 'payment.commands', retentionMs: -1 },
    ])
    expect(shorter).toMatch(/SAGA_RETENTION \(86400000 ms\) is shorter than retention\.ms of topic "order\.events" \(604800000 ms\)/)
    expect(forever).toMatch(/"payment\.commands" keeps records for ever/)
  })
})
