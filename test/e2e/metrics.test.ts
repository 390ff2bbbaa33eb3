import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { parsePrometheusText, samples, total, type Family } from '../../src/observe/prom-text.js'
import type { RoleName } from '../../src/saga/define.js'
import { ALL_ROLES, System, waitFor } from './harness.js'

type Metrics = Map<string, Family>

describe('GET /metrics on every role after a known load: the counters match what happened', () => {
  let system: System
  const endpoints = new Map<RoleName, string>()
  const completed: string[] = []
  const cancelled: string[] = []
  // A W3C traceparent given by the client; with tracing off it must reach every message unchanged.
  const traceparent = `00-${randomUUID().replaceAll('-', '')}-${randomUUID().replaceAll('-', '').slice(0, 16)}-01`
  let tracedOrder = ''

  const scrape = async (role: RoleName): Promise<Metrics> => {
    const response = await fetch(endpoints.get(role)!)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    return parsePrometheusText(await response.text())
  }

  beforeAll(async () => {
    system = new System()
    system.port = await freePort()
    endpoints.set('api', `${system.url}/metrics`)
    await Promise.all(
      ALL_ROLES.map(async (role) => {
        if (role === 'api') return system.startRole(role)
        const port = await freePort()
        endpoints.set(role, `http://127.0.0.1:${port}/metrics`)
        return system.startRole(role, { SAGA_METRICS_PORT: String(port) })
      }),
    )

    const place = async (expected: 'completed' | 'cancelled', headers: Record<string, string> = {}): Promise<string> => {
      const response = await fetch(`${system.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ user_id: 'm', items: [{ sku: 'book', qty: 1 }], amount: 999 }) })
      expect(response.status).toBe(202)
      const { order_id } = (await response.json()) as { order_id: string }
      const events = await system.waitForFinal(order_id)
      expect(events.at(-1)!.type).toBe(`order.${expected}`)
      ;(expected === 'completed' ? completed : cancelled).push(order_id)
      return order_id
    }
    tracedOrder = await place('completed', { traceparent })
    await place('completed')
    await place('completed')
    await system.chaos('inventory', '--reject', '1')
    await place('cancelled') // no compensation: nothing was reserved
    await system.chaos('payment', '--fail', '1')
    await place('completed') // one retry of charge_payment
    await system.chaos('payment', '--fail', '3')
    await place('cancelled') // two retries, then refund_payment (the last charge's outcome unknown: nothing to undo), then cancel_reservation

    // One poison record (each role reading order.events dead-letters it) and one redelivered order.created.
    await system.bus.publish([{ topic: system.topics.orderEvents, key: 'poison', value: '{"event_type":' }])
    const [created] = (await system.read('orderEvents')).filter((m) => m.message?.order_id === completed[1] && m.message?.type === 'order.created')
    await system.bus.publish([{ topic: system.topics.orderEvents, key: completed[1]!, value: created!.record.value }])
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('every role answers with valid Prometheus text, labelled with its role', async () => {
    for (const role of ALL_ROLES) {
      const metrics = await scrape(role)
      const handled = samples(metrics, 'sagactl_records_handled_total')
      expect(handled.length, role).toBeGreaterThan(0)
      expect(new Set(handled.map((s) => s.labels.role))).toEqual(new Set([role]))
      expect(metrics.get('sagactl_handle_duration_seconds')?.type).toBe('histogram')
    }
  })

  it('orchestrator: sagas by outcome and status, retries, compensations, dead letters and duplicates', async () => {
    const m = await waitFor(async () => {
      const m = await scrape('orchestrator')
      return total(m, 'sagactl_records_handled_total', { type: 'order.created', outcome: 'duplicate' }) === 1 && total(m, 'sagactl_dead_letters_total') === 1 ? m : undefined
    }, 'the orchestrator to count the duplicate and the dead letter')
    expect(total(m, 'sagactl_saga_duration_seconds_count', { outcome: 'completed' })).toBe(completed.length)
    expect(total(m, 'sagactl_saga_duration_seconds_count', { outcome: 'cancelled' })).toBe(cancelled.length)
    // Every saga took longer than nothing and finished within the test: the sum is plausible.
    expect(total(m, 'sagactl_saga_duration_seconds_sum', { outcome: 'completed' })).toBeGreaterThan(0)
    expect(total(m, 'sagactl_saga_duration_seconds_bucket', { outcome: 'completed', le: '+Inf' })).toBe(completed.length)
    expect(total(m, 'sagactl_sagas', { status: 'completed' })).toBe(completed.length)
    expect(total(m, 'sagactl_sagas', { status: 'cancelled' })).toBe(cancelled.length)
    for (const status of ['running', 'waiting_retry', 'paused', 'compensating', 'stuck']) expect(total(m, 'sagactl_sagas', { status }), status).toBe(0)
    expect(total(m, 'sagactl_saga_retries_total', { step: 'charge_payment' })).toBe(1 + 2)
    expect(total(m, 'sagactl_saga_retries_total', { step: 'reserve_inventory' })).toBe(0)
    expect(total(m, 'sagactl_saga_compensations_total', { step: 'reserve_inventory' })).toBe(1)
    expect(total(m, 'sagactl_saga_compensations_total', { step: 'charge_payment' })).toBe(1)
    expect(total(m, 'sagactl_pending_timers')).toBe(0)
    expect(total(m, 'sagactl_records_handled_total', { type: 'order.created', outcome: 'processed' })).toBe(completed.length + cancelled.length)
    expect(total(m, 'sagactl_records_handled_total', { type: 'saga.retry-due', outcome: 'processed' })).toBe(3)
  })

  it('participants and the notifier count their own work; each role reading order.events dead-letters the poison once', async () => {
    const inventory = await scrape('inventory')
    expect(total(inventory, 'sagactl_records_handled_total', { type: 'reserve_inventory', outcome: 'processed' })).toBe(completed.length + cancelled.length)
    expect(total(inventory, 'sagactl_records_handled_total', { type: 'cancel_reservation', outcome: 'processed' })).toBe(1)
    expect(total(inventory, 'sagactl_dead_letters_total')).toBe(0)
    const payment = await scrape('payment')
    // Three orders charged once, one charged twice, one charged three times; the rejected one never.
    expect(total(payment, 'sagactl_records_handled_total', { type: 'charge_payment', outcome: 'processed' })).toBe(3 + 2 + 3)
    for (const role of ['api', 'notifier'] as const) {
      const m = await waitFor(async () => {
        const m = await scrape(role)
        return total(m, 'sagactl_dead_letters_total') === 1 ? m : undefined
      }, `${role} to dead-letter the poison`)
      expect(total(m, 'sagactl_records_handled_total', { type: 'unparseable', outcome: 'dead-lettered' }), role).toBe(1)
      expect(total(m, 'sagactl_records_handled_total', { type: 'order.completed', outcome: 'processed' }), role).toBe(completed.length)
      expect(total(m, 'sagactl_records_handled_total', { type: 'order.created', outcome: 'duplicate' }), role).toBe(1)
    }
  })

  it('outbox drained, relay timed, lag 0 on every partition handled once the gaps (commit markers) are counted', async () => {
    for (const role of ALL_ROLES) {
      const m = await waitFor(async () => {
        const m = await scrape(role)
        const lag = samples(m, 'sagactl_consumer_lag_records')
        return total(m, 'sagactl_outbox_depth') === 0 && lag.length > 0 && lag.every((s) => s.value === 0) ? m : undefined
      }, `${role}: an empty outbox and lag 0 on every partition it has handled`)
      expect(total(m, 'sagactl_outbox_oldest_unsent_age_seconds'), role).toBe(0)
      expect(total(m, 'sagactl_relay_send_duration_seconds_count'), role).toBeGreaterThan(0)
      expect(total(m, 'sagactl_relay_records_total'), role).toBeGreaterThanOrEqual(total(m, 'sagactl_relay_send_duration_seconds_count'))
      const topics = new Set(samples(m, 'sagactl_consumer_lag_records').map((s) => s.labels.topic))
      const input = role === 'inventory' ? system.topics.inventoryCommands : role === 'payment' ? system.topics.paymentCommands : system.topics.orderEvents
      expect([...topics], role).toEqual([input])
    }
  })

  it('with tracing off, a client traceparent reaches every message of its order unchanged, and no other order gets one', async () => {
    const all = [...(await system.read('orderEvents')), ...(await system.read('inventoryCommands')), ...(await system.read('paymentCommands'))].filter((m) => m.message)
    const traced = all.filter((m) => m.message!.order_id === tracedOrder)
    expect(traced.map((m) => m.message!.type).sort()).toEqual(['charge_payment', 'inventory.reserved', 'order.completed', 'order.created', 'payment.succeeded', 'reserve_inventory'])
    for (const m of traced) expect(m.record.headers.traceparent, m.message!.type).toBe(traceparent)
    const others = all.filter((m) => m.message!.order_id !== tracedOrder && m.record.headers.traceparent !== undefined)
    // The redelivered order.created was sent by this test without headers.
    expect(others.map((m) => m.message!.type)).toEqual([])
  })
})
