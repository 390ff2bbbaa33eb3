import { describe, expect, it } from 'vitest'

import { partitionCounts } from '../src/config.js'
import { ConfigError } from '../src/config-env.js'
import { orderSaga } from '../src/order-saga/saga.js'
import { defineSaga } from '../src/saga/define.js'
import { topicSpecs, topicTable, withPartitions } from '../src/topics.js'
import { threeStepSaga } from './saga/three-step-saga.js'

const countsOf = (specs: { name: string; partitions: number }[]): Record<string, number> => Object.fromEntries(specs.map((s) => [s.name, s.partitions]))

describe('partition counts: the seed\'s by default, SAGA_PARTITIONS or the saga for a new deployment', () => {
  it('given no setting, then the order saga keeps 8/4/4, its changelogs alike, and is the same object', () => {
    const saga = withPartitions(orderSaga, partitionCounts({}))

    expect(saga).toBe(orderSaga)
    expect(countsOf(topicSpecs('', saga))).toEqual({
      'order.events': 8,
      'inventory.commands': 4,
      'payment.commands': 4,
      dlq: 1,
      'sagactl.control': 1,
      'sagactl.orchestrator.changelog': 8,
      'sagactl.inventory.changelog': 4,
      'sagactl.payment.changelog': 4,
      'sagactl.notifier.changelog': 8,
    })
  })

  it('given order.events=64 and inventory.commands=32, then those topics and the changelogs that follow them have those counts; the rest keep theirs', () => {
    const saga = withPartitions(orderSaga, partitionCounts({ SAGA_PARTITIONS: 'order.events=64,inventory.commands=32' }))

    expect(countsOf(topicSpecs('p.', saga))).toEqual({
      'p.order.events': 64,
      'p.inventory.commands': 32,
      'p.payment.commands': 4,
      'p.dlq': 1,
      'p.sagactl.control': 1,
      'p.sagactl.orchestrator.changelog': 64,
      'p.sagactl.inventory.changelog': 32,
      'p.sagactl.payment.changelog': 4,
      'p.sagactl.notifier.changelog': 64,
    })
    expect(topicSpecs('p.', saga).filter((s) => s.name.endsWith('.changelog')).every((s) => 'compacted' in s && s.compacted)).toBe(true)
  })

  it('given a setting, then the saga it was applied to is unchanged, and the step keeps its code and names', () => {
    const saga = withPartitions(orderSaga, { 'payment.commands': 16 })

    expect(topicTable(orderSaga).paymentCommands.partitions).toBe(4)
    expect(topicTable(saga).paymentCommands.partitions).toBe(16)
    const [before, after] = [orderSaga.steps[1]!, saga.steps[1]!]
    expect(after).toEqual({ ...before, topic: { ...before.topic, partitions: 16 } })
    expect(saga.steps[0]).toBe(orderSaga.steps[0])
  })

  it("given a saga of its own, then its step topics are settable by their names, and a changelog follows its step's topic", () => {
    const saga = withPartitions(threeStepSaga, { 'shipping.commands': 6 })

    expect(countsOf(topicSpecs('', saga))).toMatchObject({ 'shipping.commands': 6, 'sagactl.shipping.changelog': 6, 'order.events': 8 })
  })

  it('given a saga that sets events.partitions, then order.events and the changelogs that follow it have that count, and SAGA_PARTITIONS still wins', () => {
    const saga = defineSaga({ ...orderSaga, events: { partitions: 16 } })

    expect(countsOf(topicSpecs('', saga))).toMatchObject({ 'order.events': 16, 'sagactl.orchestrator.changelog': 16, 'sagactl.notifier.changelog': 16 })
    expect(topicTable(withPartitions(saga, { 'order.events': 32 })).orderEvents.partitions).toBe(32)
  })

  it.each([0, 1.5, -1])('given a saga whose events.partitions is %s, then defineSaga refuses it', (partitions) => {
    expect(() => defineSaga({ ...orderSaga, events: { partitions } })).toThrow('invalid saga definition: events.partitions (of order.events) must be a whole number ≥ 1')
  })

  it.each(['dlq', 'sagactl.control', 'sagactl.orchestrator.changelog', 'shipping.commands', 'p.order.events'])(
    'given SAGA_PARTITIONS naming %s, not a settable topic of the order saga, then one sentence names the variable and the topics it can set',
    (topic) => {
      const refused = (() => {
        try {
          withPartitions(orderSaga, { [topic]: 2 })
        } catch (error) {
          return error
        }
        return undefined
      })()

      expect(refused).toBeInstanceOf(ConfigError)
      expect((refused as Error).message).toBe(
        `SAGA_PARTITIONS names ${topic}, not a topic whose partitions can be set; this saga's are order.events, inventory.commands, payment.commands (each changelog follows its input topic; dlq and sagactl.control keep 1)`,
      )
    },
  )
})
