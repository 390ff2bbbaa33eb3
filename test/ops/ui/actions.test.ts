import { describe, expect, it } from 'vitest'

import type { ConsumedRecord, MessageBus, ProducedRecord, ReadOptions, TailOptions } from '../../../src/kafka/port.js'
import { ActionFailed, REQUESTED_BY, uiActions } from '../../../src/ops/ui/actions.js'
import { CANCEL_ACCEPTED, CANCEL_IGNORED, CANCEL_REQUESTED, PAUSE_ACCEPTED, PAUSE_REQUESTED, RESUME_IGNORED, RESUME_REQUESTED } from '../../../src/saga/decide.js'
import { orderSaga } from '../../../src/order-saga/saga.js'
import { changelogTopic, topicNames } from '../../../src/topics.js'

const topics = topicNames('', orderSaga)
const changelog = changelogTopic('', 'orchestrator')

const consumed = (topic: string, key: string, value: unknown, offset = 0n): ConsumedRecord => ({ topic, partition: 0, offset, key: Buffer.from(key), value: Buffer.from(JSON.stringify(value)), headers: {}, timestamp: 0n })

/**
 * A broker in memory: topics are lists of records; `orchestrator` answers each request published on
 * order.events (or stays silent when it returns undefined), on the control topic, as the real one does.
 */
function memoryBus(seed: Record<string, ConsumedRecord[]>, orchestrator: (request: { message_id: string; order_id: string }) => { type: string; payload: Record<string, unknown> } | undefined) {
  const topicsOf = new Map(Object.entries(seed))
  const tails: TailOptions[] = []
  const published: ProducedRecord[] = []
  const bus = {
    async publish(records: ProducedRecord[]) {
      for (const r of records) {
        published.push(r)
        const record = { topic: r.topic, partition: 0, offset: BigInt(topicsOf.get(r.topic)?.length ?? 0), key: Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), headers: r.headers ?? {}, timestamp: 0n }
        topicsOf.set(r.topic, [...(topicsOf.get(r.topic) ?? []), record])
        for (const t of tails) if (t.topic === r.topic) t.handler(record)
        // A replayed dead letter goes to order.events too, and is no request.
        if (r.topic !== topics.orderEvents || r.headers?.['x-dlq-replayed-from']) continue
        const request = JSON.parse(String(r.value)) as { message_id: string; order_id: string }
        const said = orchestrator(request)
        if (said) await bus.publish([{ topic: topics.control, key: request.order_id, value: JSON.stringify({ event_type: said.type, order_id: request.order_id, saga_id: 's1', message_id: `answer-${request.message_id}`, causation_id: request.message_id, payload: said.payload }) }])
      }
    },
    async read(options: ReadOptions) {
      for (const record of topicsOf.get(options.topic) ?? []) await options.handler(record)
    },
    async tail(options: TailOptions) {
      tails.push(options)
      return { close: async () => void tails.splice(tails.indexOf(options), 1) }
    },
    async endOffsets(topic: string) {
      return [BigInt(topicsOf.get(topic)?.length ?? 0)]
    },
    partitionOf: () => 0,
  }
  return { bus: bus as unknown as MessageBus, published }
}

const sagaState = (status: string) => consumed(changelog, 's|saga|o1', { order_id: 'o1', saga_id: 's1', status, step: 'charge_payment', attempt: 2 })

describe("the page's actions: the CLI's functions, with what they wrote and the answer they got", () => {
  it('a cancel: the saga.cancel-requested it published, by "sagactl ui", and the orchestrator\'s saga.cancel-accepted', async () => {
    const { bus, published } = memoryBus({ [changelog]: [sagaState('waiting_retry')] }, () => ({ type: CANCEL_ACCEPTED, payload: { status: 'compensating', step: 'charge_payment', reason: 'cancelled by request: why' } }))
    const done = await uiActions(bus, topics, changelog, orderSaga).cancel('o1', 'why')
    expect(done.wrote).toHaveLength(1)
    expect(done.wrote[0]).toMatchObject({ topic: topics.orderEvents, key: 'o1', value: { event_type: CANCEL_REQUESTED, order_id: 'o1', payload: { reason: 'why', requested_by: REQUESTED_BY } } })
    // The record shown is the one that went out, byte for byte.
    expect(done.wrote[0]!.value).toEqual(JSON.parse(String(published[0]!.value)))
    expect(done.answer).toMatchObject({ type: CANCEL_ACCEPTED, causation_id: (done.wrote[0]!.value as { message_id: string }).message_id })
    expect(done.result).toMatchObject({ outcome: 'cancelling', status: 'compensating' })
  })

  it('refused: an ended saga 409 with nothing written; the orchestrator saying no 409 with its answer; silence 504 with the request left', async () => {
    const ended = memoryBus({ [changelog]: [sagaState('completed')] }, () => undefined)
    const refusedEarly = await uiActions(ended.bus, topics, changelog, orderSaga).cancel('o1', '').catch((e: unknown) => e)
    expect(refusedEarly).toBeInstanceOf(ActionFailed)
    expect(refusedEarly).toMatchObject({ statusCode: 409, wrote: [], message: expect.stringContaining('has already ended: completed') })
    expect(ended.published).toEqual([])

    const ignored = memoryBus({ [changelog]: [sagaState('compensating')] }, () => ({ type: CANCEL_IGNORED, payload: { reason: 'already compensating' } }))
    expect(await uiActions(ignored.bus, topics, changelog, orderSaga).cancel('o1', '').catch((e: unknown) => e)).toMatchObject({ statusCode: 409, message: expect.stringContaining('already compensating'), wrote: [{ value: { event_type: CANCEL_REQUESTED } }] })

    const silent = memoryBus({ [changelog]: [sagaState('running')] }, () => undefined)
    expect(await uiActions(silent.bus, topics, changelog, orderSaga, 50).cancel('o1', '').catch((e: unknown) => e)).toMatchObject({ statusCode: 504, message: expect.stringContaining('did not answer'), wrote: [{ value: { event_type: CANCEL_REQUESTED } }] })
  })

  it('a pause and a resume go the same way: the request by "sagactl ui" with its reason, the answer, an ignored one 409', async () => {
    const { bus } = memoryBus({ [changelog]: [sagaState('running')] }, () => ({ type: PAUSE_ACCEPTED, payload: { status: 'paused', step: 'charge_payment', attempt: 2, reason: 'hold on' } }))
    const paused = await uiActions(bus, topics, changelog, orderSaga).pause('o1', 'hold on')
    expect(paused).toMatchObject({ action: 'pause', wrote: [{ value: { event_type: PAUSE_REQUESTED, payload: { reason: 'hold on', requested_by: REQUESTED_BY } } }], answer: { type: PAUSE_ACCEPTED }, result: { outcome: 'paused', status: 'paused' } })

    const notPaused = memoryBus({ [changelog]: [sagaState('running')] }, () => ({ type: RESUME_IGNORED, payload: { reason: 'not paused' } }))
    expect(await uiActions(notPaused.bus, topics, changelog, orderSaga).resume('o1', '').catch((e: unknown) => e)).toMatchObject({ statusCode: 409, message: expect.stringContaining('not paused'), wrote: [{ value: { event_type: RESUME_REQUESTED } }] })
  })

  it('an unknown saga is 404; a saga that is not stuck is not retried (409, nothing written)', async () => {
    const { bus, published } = memoryBus({ [changelog]: [sagaState('running')] }, () => undefined)
    const actions = uiActions(bus, topics, changelog, orderSaga)
    expect(await actions.cancel('nope', '').catch((e: unknown) => e)).toMatchObject({ statusCode: 404 })
    expect(await actions.retry('o1').catch((e: unknown) => e)).toMatchObject({ statusCode: 409, message: expect.stringContaining('not stuck') })
    expect(published).toEqual([])
  })

  it('a replay sends the dead letter back to its source, as `dlq replay <id>` does, and shows that record; an unknown id is 404', async () => {
    const letter = { dead_letter_id: 'd1', reason: 'not JSON', role: 'orchestrator', source: { topic: topics.orderEvents, partition: 3, offset: '17' }, key: 'o9', headers: { a: 'b' }, value_base64: Buffer.from('{oops').toString('base64'), dead_lettered_at: '2030-01-01T00:00:00Z' }
    const { bus } = memoryBus({ [topics.dlq]: [consumed(topics.dlq, 'o9', letter)] }, () => undefined)
    const actions = uiActions(bus, topics, changelog, orderSaga)
    expect(await actions.deadLetters()).toMatchObject([{ dead_letter_id: 'd1', replayed_at: null }])
    const done = await actions.replay('d1')
    expect(done.result).toEqual({ replayed: ['d1'] })
    expect(done.wrote[0]).toEqual({ topic: topics.orderEvents, key: 'o9', headers: { a: 'b', 'x-dlq-replayed-from': 'd1' }, value: '{oops' })
    expect(done.wrote[1]).toMatchObject({ topic: topics.control, value: { event_type: 'dlq.replayed', payload: { dead_letter_id: 'd1' } } })
    expect(await actions.deadLetters()).toMatchObject([{ dead_letter_id: 'd1', replayed_at: expect.any(String) }])
    expect(await actions.replay('d2').catch((e: unknown) => e)).toMatchObject({ statusCode: 404, message: 'no dead letter d2' })
  })
})
