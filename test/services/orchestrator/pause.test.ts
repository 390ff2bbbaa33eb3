import { beforeEach, describe, expect, it } from 'vitest'

import { parseEnvelope, type Message } from '../../../src/envelope.js'
import type { ConsumedRecord, ProducedRecord, Subscription, TailOptions } from '../../../src/kafka/port.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { decide, PAUSE_REQUESTED, RESUME_REQUESTED, type SagaState } from '../../../src/saga/decide.js'
import { describePause, describeResume, PauseNotDone, requestSagaPause, requestSagaResume, ResumeNotDone } from '../../../src/services/orchestrator/pause.js'
import { changelogTopic, topicNames } from '../../../src/topics.js'
import { MemoryBus } from '../../runtime/memory-bus.js'
import { created, ctx, given, msg, ORDER, policy, SAGA } from './given.js'

const topics = topicNames('', orderSaga)
const changelog = changelogTopic('', 'orchestrator')

/**
 * The bus with an orchestrator behind it: a request published on order.events is decided by the
 * real engine, its answer delivered to whoever tails the control topic, and the saga's new state
 * written to the changelog, as the orchestrator role would.
 */
class OrchestratedBus extends MemoryBus {
  #tails: TailOptions[] = []
  requests: Message[] = []
  /** Off: the orchestrator is down, requests stay on the log unanswered. */
  answering = true
  constructor(public state: SagaState | undefined) {
    super()
    if (state) this.#save(state)
  }
  override async tail(options: TailOptions): Promise<Subscription> {
    this.#tails.push(options)
    return { close: async () => void this.#tails.splice(this.#tails.indexOf(options), 1) }
  }
  override async publish(records: ProducedRecord[]): Promise<void> {
    await super.publish(records)
    for (const r of records.filter((r) => r.topic === topics.orderEvents)) {
      const parsed = parseEnvelope(Buffer.from(r.value!))
      if (!parsed.ok) continue
      this.requests.push(parsed.message)
      if (!this.answering) continue
      const d = decide(orderSaga, policy, this.state, parsed.message, ctx(2_000_000))
      if (d.state) this.#save(d.state)
      for (const out of d.messages.filter((m) => m.topic === 'control')) {
        const record: ConsumedRecord = { topic: topics.control, partition: 0, offset: 0n, key: null, value: Buffer.from(JSON.stringify(out.envelope)), headers: {}, timestamp: 0n }
        for (const t of this.#tails) t.handler(record)
      }
    }
  }
  #save(state: SagaState): void {
    this.state = state
    this.published.push({ topic: changelog, key: `s|saga|${state.order_id}`, value: JSON.stringify(state) })
  }
}

const options = { saga: orderSaga, reason: 'address check', requestedBy: 'test', wait: true, timeoutMs: 1000 }
// Reserved, then the charge failed retryably: the saga waits for its retry.
const waiting = () => given(created(), msg('inventory.reserved', { reservation_id: 'r-1', attempt: 1 }), msg('payment.failed', { attempt: 1, retryable: true, reason: 'declined' })).state()!

describe('requestSagaPause and requestSagaResume ask the orchestrator through the log', () => {
  let bus: OrchestratedBus
  beforeEach(() => {
    bus = new OrchestratedBus(waiting())
    expect(bus.state!.status).toBe('waiting_retry')
  })

  it('given a saga waiting for its retry, when paused, then one saga.pause-requested keyed by the order, and the answer says paused, with the reason', async () => {
    const result = await requestSagaPause(bus, topics, changelog, ORDER, options)
    expect(result).toEqual({ order_id: ORDER, saga_id: SAGA, request_id: bus.requests[0]!.message_id, outcome: 'paused', status: 'paused', step: 'charge_payment', attempt: 1, reason: 'address check' })
    expect(bus.requests.map((r) => [r.type, r.order_id, r.payload])).toEqual([[PAUSE_REQUESTED, ORDER, { reason: 'address check', requested_by: 'test' }]])
    expect(bus.published.find((p) => p.topic === topics.orderEvents)!.key).toBe(ORDER)
    expect(describePause(result)).toBe(`order ${ORDER}: paused at charge_payment, attempt 1 (address check); no command goes out until \`sagactl saga resume ${ORDER}\``)
  })

  it('given a paused saga, when resumed (by its saga id), then it waits for its retry again', async () => {
    await requestSagaPause(bus, topics, changelog, ORDER, options)
    const result = await requestSagaResume(bus, topics, changelog, SAGA, { ...options, reason: undefined })
    expect(result).toMatchObject({ order_id: ORDER, outcome: 'resumed', status: 'waiting_retry', step: 'charge_payment', attempt: 1 })
    expect(bus.requests.map((r) => [r.type, r.payload])).toEqual([
      [PAUSE_REQUESTED, { reason: 'address check', requested_by: 'test' }],
      [RESUME_REQUESTED, { reason: '', requested_by: 'test' }],
    ])
    expect(describeResume(result)).toBe(`order ${ORDER}: resumed, waiting_retry at charge_payment, attempt 1`)
  })

  it("given a saga already paused, when paused again, then PauseNotDone with the orchestrator's reason", async () => {
    await requestSagaPause(bus, topics, changelog, ORDER, options)
    await expect(requestSagaPause(bus, topics, changelog, ORDER, options)).rejects.toThrow(new PauseNotDone(`the orchestrator did not pause the saga of order ${ORDER}: already paused by test (${bus.requests[0]!.message_id})`))
  })

  it("given a saga that is not paused, when resumed, then ResumeNotDone with the orchestrator's reason", async () => {
    await expect(requestSagaResume(bus, topics, changelog, ORDER, options)).rejects.toThrow(new ResumeNotDone(`the orchestrator did not resume the saga of order ${ORDER}: the saga is waiting_retry, not paused; nothing changed`))
  })

  it('given a saga that ended, then refused before anything is published', async () => {
    bus = new OrchestratedBus({ ...waiting(), status: 'completed' })
    await expect(requestSagaPause(bus, topics, changelog, ORDER, options)).rejects.toThrow(new PauseNotDone(`the saga of order ${ORDER} has already ended: completed; nothing changed`))
    await expect(requestSagaResume(bus, topics, changelog, ORDER, options)).rejects.toThrow(ResumeNotDone)
    expect(bus.requests).toEqual([])
  })

  it('given no orchestrator answering, then PauseNotDone saying the request stays on the log; with --no-wait, requested with the status as read', async () => {
    bus.answering = false
    await expect(requestSagaPause(bus, topics, changelog, ORDER, { ...options, timeoutMs: 50 })).rejects.toThrow(/did not answer within 0 s; .* stays on order\.events/)
    const result = await requestSagaPause(bus, topics, changelog, ORDER, { ...options, wait: false })
    expect(result).toEqual({ order_id: ORDER, saga_id: SAGA, request_id: bus.requests[1]!.message_id, outcome: 'requested', status: 'waiting_retry', step: 'charge_payment', attempt: 1, reason: 'address check' })
    expect(describePause(result)).toMatch(/pause requested \(.+\); `sagactl saga show/)
  })
})
