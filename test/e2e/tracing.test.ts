import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { OtlpReceiver, type ReceivedSpan } from '../observe/otlp-receiver.js'
import { System, waitFor } from './harness.js'

/** The span and its ancestors, root first; fails if a parent is missing from the trace. */
function ancestry(spans: ReceivedSpan[], leaf: ReceivedSpan): ReceivedSpan[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const chain = [leaf]
  for (let s = leaf; s.parentSpanId; ) {
    const parent = byId.get(s.parentSpanId)
    if (!parent) throw new Error(`span ${s.name} (${s.service}) names parent ${s.parentSpanId}, which is not in the trace`)
    chain.unshift(parent)
    s = parent
  }
  return chain
}

const label = (s: ReceivedSpan): string => `${s.service.replace('sagactl-', '')}: ${s.name}`

describe('tracing: one order, one trace across the CLI and all five roles (OTLP http/json to a receiver in this process)', () => {
  const receiver = new OtlpReceiver()
  let system: System
  beforeAll(async () => {
    const endpoint = await receiver.start()
    // A short batch delay so spans arrive while the test polls, not five seconds later.
    system = await System.start(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' })
  })
  afterAll(async () => {
    await system?.stop()
    await receiver.stop()
  })

  async function traceOf(orderId: string, leafName: string): Promise<{ spans: ReceivedSpan[]; leaf: ReceivedSpan }> {
    return waitFor(() => {
      const root = receiver.spans.find((s) => s.name === 'order create' && s.attributes['sagactl.order_id'] === orderId)
      if (!root) return undefined
      const spans = receiver.spans.filter((s) => s.traceId === root.traceId)
      const leaf = spans.find((s) => s.service === 'sagactl-notifier' && s.name === leafName)
      if (!leaf) return undefined
      // Each process exports on its own schedule: a parent span may land after its child's.
      try {
        ancestry(spans, leaf)
      } catch {
        return undefined
      }
      return { spans, leaf }
    }, `the trace of order ${orderId} down to the notifier's "${leafName}"`)
  }

  it('sagactl order create → api → orchestrator → inventory → orchestrator → payment → orchestrator → notifier, each hop a publish span and a process span, in causal order', async () => {
    const created = await system.cli(['order', 'create', '--json'])
    expect(created.code, created.stderr).toBe(0)
    const { order_id } = JSON.parse(created.stdout) as { order_id: string }
    await system.waitForFinal(order_id)

    const { spans, leaf } = await traceOf(order_id, 'process order.completed')
    expect(ancestry(spans, leaf).map(label)).toEqual([
      'cli: order create',
      'api: POST /orders',
      'api: publish order.created',
      'orchestrator: process order.created',
      'orchestrator: publish reserve_inventory',
      'inventory: process reserve_inventory',
      'inventory: publish inventory.reserved',
      'orchestrator: process inventory.reserved',
      'orchestrator: publish charge_payment',
      'payment: process charge_payment',
      'payment: publish payment.succeeded',
      'orchestrator: process payment.succeeded',
      'orchestrator: publish order.completed',
      'notifier: process order.completed',
    ])
    // Causal order in time too: no span starts before its parent.
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    for (const s of spans) {
      const parent = byId.get(s.parentSpanId)
      if (parent) expect(s.start >= parent.start, `${label(s)} starts before its parent ${label(parent)}`).toBe(true)
    }
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['sagactl-cli', 'sagactl-api', 'sagactl-orchestrator', 'sagactl-inventory', 'sagactl-payment', 'sagactl-notifier']))
    // The api reads order.events for its order views: those spans are in the same trace.
    await waitFor(() => receiver.spans.some((s) => s.traceId === leaf.traceId && s.service === 'sagactl-api' && s.name === 'process order.completed'), "the api's span for order.completed")
    expect(receiver.rejected).toEqual([])
  })

  it('a retried step stays in the order’s trace: the retry timer carries the context', async () => {
    await system.chaos('payment', '--fail', '1')
    const created = await system.cli(['order', 'create', '--json'])
    expect(created.code, created.stderr).toBe(0)
    const { order_id } = JSON.parse(created.stdout) as { order_id: string }
    const events = await system.waitForFinal(order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.retry-due', 'payment.succeeded', 'order.completed'])

    const { spans, leaf } = await traceOf(order_id, 'process order.completed')
    const chain = ancestry(spans, leaf).map(label)
    const retry = chain.indexOf('orchestrator: process saga.retry-due')
    expect(retry, chain.join('\n')).toBeGreaterThan(chain.indexOf('orchestrator: process payment.failed'))
    expect(chain.slice(retry + 1, retry + 4)).toEqual(['orchestrator: publish charge_payment', 'payment: process charge_payment', 'payment: publish payment.succeeded'])
    expect(spans.filter((s) => s.name === 'process charge_payment').map((s) => s.attributes['sagactl.outcome'])).toEqual(['processed', 'processed'])
  })
})
