import { describe, expect, it } from 'vitest'

import { awaitEvent, defineSaga, parallel, previousSteps, type SagaStep } from '../../src/saga/define.js'
import { breachKinds, chaosTargets, commandTypes, definitionHash, eventTypes, roleNames, sagaHops } from '../../src/saga/derive.js'
import { inventory } from '../../src/order-saga/inventory.js'
import { payment } from '../../src/order-saga/payment.js'
import { COMMAND_TYPES, EVENT_TYPES, orderSaga, TOPICS } from '../../src/order-saga/saga.js'
import { BREACH_KINDS } from '../../src/ops/verify.js'
import { topicNames, topicSpecs } from '../../src/topics.js'
import { shipping } from './steps/shipping.js'
import { threeStepSaga } from './three-step-saga.js'
import { withPartitions } from '../../src/topics.js'

// The order saga's derivations are compared with the values that were written out by hand before
// steps became modules: equal means nothing external changed. The saga-level events (saga.stuck,
// saga.retry-requested) and the stuck breach kind came with stuck sagas: every saga has them.

describe('derived from the order saga: exactly the names the contract and 0.2 use', () => {
  it('envelope type lists', () => {
    expect(EVENT_TYPES).toEqual(['order.created', 'inventory.reserved', 'inventory.reserve-failed', 'inventory.reservation-cancelled', 'payment.succeeded', 'payment.failed', 'payment.refunded', 'order.completed', 'order.cancelled', 'saga.stuck', 'saga.retry-requested', 'saga.retry-due', 'saga.step-timed-out', 'saga.cancel-requested', 'saga.deadline-passed', 'saga.pause-requested', 'saga.resume-requested'])
    expect(COMMAND_TYPES).toEqual(['reserve_inventory', 'cancel_reservation', 'charge_payment', 'refund_payment', 'set_chaos'])
  })

  it('topics, partitions and changelogs', () => {
    expect(TOPICS).toEqual({
      orderEvents: { name: 'order.events', partitions: 8 },
      inventoryCommands: { name: 'inventory.commands', partitions: 4 },
      paymentCommands: { name: 'payment.commands', partitions: 4 },
      dlq: { name: 'dlq', partitions: 1 },
      control: { name: 'sagactl.control', partitions: 1 },
    })
    expect(topicSpecs('p.', orderSaga)).toEqual([
      { name: 'p.order.events', partitions: 8 },
      { name: 'p.inventory.commands', partitions: 4 },
      { name: 'p.payment.commands', partitions: 4 },
      { name: 'p.dlq', partitions: 1 },
      { name: 'p.sagactl.control', partitions: 1 },
      { name: 'p.sagactl.orchestrator.changelog', partitions: 8, compacted: true },
      { name: 'p.sagactl.inventory.changelog', partitions: 4, compacted: true },
      { name: 'p.sagactl.payment.changelog', partitions: 4, compacted: true },
      { name: 'p.sagactl.notifier.changelog', partitions: 8, compacted: true },
    ])
  })

  it('roles, chaos targets, bench hops and breach kinds', () => {
    expect(roleNames(orderSaga)).toEqual(['api', 'orchestrator', 'inventory', 'payment', 'notifier'])
    expect(chaosTargets(orderSaga)).toEqual(['inventory', 'payment'])
    expect(sagaHops(orderSaga)).toEqual([
      ['order.created', 'reserve_inventory'],
      ['reserve_inventory', 'inventory.reserved'],
      ['inventory.reserved', 'charge_payment'],
      ['charge_payment', 'payment.succeeded'],
      ['payment.succeeded', 'order.completed'],
    ])
    expect(BREACH_KINDS).toEqual([
      'unfinished',
      'stuck',
      'multiple_final_events',
      'double_reservation',
      'double_charge',
      'charge_without_reservation',
      'completed_without_reservation',
      'completed_without_payment',
      'cancelled_with_effect_standing',
      'compensation_applied_twice',
      'message_id_conflict',
    ])
  })

  it('the steps the orchestrator runs keep their persisted names', () => {
    expect(orderSaga.steps.map((s) => s.name)).toEqual(['reserve_inventory', 'charge_payment'])
  })
})

describe('derived from a three-step saga: the ship step appears everywhere, from its one module', () => {
  it('message types, in step order', () => {
    expect(eventTypes(threeStepSaga)).toEqual([...EVENT_TYPES.slice(0, 7), 'shipping.shipped', 'shipping.ship-failed', 'shipping.shipment-cancelled', 'order.completed', 'order.cancelled', 'saga.stuck', 'saga.retry-requested', 'saga.retry-due', 'saga.step-timed-out', 'saga.cancel-requested', 'saga.deadline-passed', 'saga.pause-requested', 'saga.resume-requested'])
    expect(commandTypes(threeStepSaga)).toEqual(['reserve_inventory', 'cancel_reservation', 'charge_payment', 'refund_payment', 'ship_order', 'cancel_shipment', 'set_chaos'])
  })

  it('its topic and its changelog', () => {
    expect(topicNames('', threeStepSaga).shippingCommands).toBe('shipping.commands')
    const specs = topicSpecs('', threeStepSaga)
    expect(specs).toContainEqual({ name: 'shipping.commands', partitions: 2 })
    expect(specs).toContainEqual({ name: 'sagactl.shipping.changelog', partitions: 2, compacted: true })
    expect(specs.length).toBe(topicSpecs('', orderSaga).length + 2)
  })

  it('its role, chaos target, hops and breach kinds', () => {
    expect(roleNames(threeStepSaga)).toEqual(['api', 'orchestrator', 'inventory', 'payment', 'shipping', 'notifier'])
    expect(chaosTargets(threeStepSaga)).toEqual(['inventory', 'payment', 'shipping'])
    expect(sagaHops(threeStepSaga).slice(-3)).toEqual([
      ['payment.succeeded', 'ship_order'],
      ['ship_order', 'shipping.shipped'],
      ['shipping.shipped', 'order.completed'],
    ])
    expect(breachKinds(threeStepSaga)).toEqual(expect.arrayContaining(['stuck', 'double_shipment', 'shipment_without_charge', 'completed_without_shipment']))
    expect(breachKinds(threeStepSaga).length).toBe(BREACH_KINDS.length + 3)
  })
})

describe('defineSaga refuses a definition that would misroute replies', () => {
  it('given a second step reusing a message type, then it names it', () => {
    const clash = { ...shipping, command: { ...shipping.command, type: 'charge_payment' } }
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, payment, clash] })).toThrow(/message type "charge_payment" is used twice/)
  })

  it('given a step after the first without a check against its predecessor, then it says so', () => {
    const { withoutPrevious: _omitted, ...checks } = shipping.verify
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, payment, { ...shipping, verify: checks }] })).toThrow(/ship_order follows another step/)
  })

  it('given a participant role the saga itself uses, then it is refused', () => {
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, { ...payment, role: 'notifier' as never }] })).toThrow(/role "notifier" is used twice/)
  })
  it('given a step replying with a saga-level event, then it is refused: saga.stuck belongs to every saga', () => {
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, payment, { ...shipping, failed: 'saga.stuck' }] })).toThrow(/message type "saga.stuck" is used twice/)
  })
})

describe('defineSaga with a parallel stage and a wait for an outside event', () => {
  const approval = awaitEvent({ name: 'approval', event: 'order.approved', timeoutMs: 60_000 })
  const flowSaga = defineSaga({ ...threeStepSaga, steps: [parallel(inventory, payment), approval, shipping] })

  it('given parallel(…) and awaitEvent(…) among the steps, then the participant steps in flow order and the stages, the wait cancelling by default', () => {
    expect(flowSaga.steps.map((s) => s.name)).toEqual(['reserve_inventory', 'charge_payment', 'ship_order'])
    expect(flowSaga.stages?.map((st) => st.kind)).toEqual(['parallel', 'await', 'step'])
    expect(flowSaga.stages?.[0]).toMatchObject({ name: 'reserve_inventory+charge_payment' })
    expect(flowSaga.stages?.[1]).toEqual({ kind: 'await', wait: { name: 'approval', event: 'order.approved', timeoutMs: 60_000, onTimeout: 'cancel' } })
    expect(defineSaga(threeStepSaga).stages).toBeUndefined()
  })

  it('given the flow, then the awaited event is one of its event types, the step before a step is the stage before (every branch), and the shape changes the hash', () => {
    expect(eventTypes(flowSaga)).toContain('order.approved')
    expect(previousSteps(flowSaga, shipping).map((s) => s.name)).toEqual(['reserve_inventory', 'charge_payment'])
    expect(previousSteps(flowSaga, payment)).toEqual([])
    expect(definitionHash(flowSaga)).not.toBe(definitionHash(threeStepSaga))
    expect(definitionHash(defineSaga({ ...threeStepSaga, steps: [inventory, payment, shipping] }))).toBe(definitionHash(threeStepSaga))
  })

  it('given a wait without a time limit, a bad onTimeout, one branch, or an awaited event that is a step\'s reply, then each is named', () => {
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, awaitEvent({ name: 'w', event: 'x.y', timeoutMs: 0 }), payment] })).toThrow(/awaitEvent w: timeoutMs must be a whole number/)
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, { await: { name: 'w', event: 'x.y', timeoutMs: 5, onTimeout: 'maybe' as never } }, payment] })).toThrow(/onTimeout must be 'cancel' or 'continue'/)
    expect(() => defineSaga({ ...threeStepSaga, steps: [parallel(inventory), payment] })).toThrow(/needs at least two steps/)
    expect(() => defineSaga({ ...threeStepSaga, steps: [inventory, awaitEvent({ name: 'w', event: 'payment.succeeded', timeoutMs: 5 }), payment] })).toThrow(/message type "payment.succeeded" is used twice/)
  })
})

describe('definitionHash: the saga’s shape, not its code or policies', () => {
  it('given the same steps with other code or another retry policy, then the same hash; another effect id or step, another hash', () => {
    const base = definitionHash(orderSaga)
    expect(base).toMatch(/^[0-9a-f]{12}$/)
    const withPolicy = defineSaga({ ...orderSaga, steps: [inventory, { ...payment, retry: { maxAttempts: 9 }, act: async () => ({ ok: true }) }] })
    expect(definitionHash(withPolicy)).toBe(base)
    const renamed: SagaStep = { ...payment, effectId: 'charge_id' }
    expect(definitionHash(defineSaga({ ...orderSaga, steps: [inventory, renamed] }))).not.toBe(base)
    expect(definitionHash(defineSaga({ ...orderSaga, steps: [inventory] }))).not.toBe(base)
  })

  it('given other partition counts (SAGA_PARTITIONS, or the module\'s own), then the same hash: a command run without the setting stamps the shape the roles run', () => {
    const base = definitionHash(orderSaga)
    expect(definitionHash(withPartitions(orderSaga, { 'order.events': 64, 'inventory.commands': 32 }))).toBe(base)
    expect(definitionHash(defineSaga({ ...orderSaga, steps: [{ ...inventory, topic: { ...inventory.topic, partitions: 16 } }, payment] }))).toBe(base)
    expect(definitionHash(defineSaga({ ...orderSaga, steps: [{ ...inventory, topic: { ...inventory.topic, name: 'stock.commands' } }, payment] }))).not.toBe(base)
  })
})
