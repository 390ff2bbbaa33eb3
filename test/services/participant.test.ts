import { describe, expect, it } from 'vitest'

import { command, type Message } from '../../src/envelope.js'
import { decideParticipant, inventorySpec, NO_CHAOS, paymentSpec, type ParticipantState } from '../../src/services/participant.js'

const ctx = (random = 0.5) => {
  let n = 0
  return { now: 0, random: () => random, newId: () => `id-${++n}` }
}
const cmd = (type: Parameters<typeof command>[0], payload: Record<string, unknown>): Message => ({ ...command(type, { order_id: 'o1', saga_id: 's1', payload }, 0, `m-${type}`), type })
const fresh: ParticipantState = { chaos: NO_CHAOS }
const options = { successRate: 1, allowChaos: true }

describe('payment participant', () => {
  it('given no charge yet, when charge_payment, then one payment with a new payment_id', () => {
    const d = decideParticipant(paymentSpec, options, fresh, cmd('charge_payment', { amount: 999, attempt: 1 }), ctx())
    expect(d.effect).toMatchObject({ effect_id: 'id-1', status: 'held', payload: { amount: 999 } })
    expect(d.messages.map((m) => [m.envelope.event_type, m.envelope.payload])).toEqual([['payment.succeeded', { amount: 999, payment_id: 'id-1', attempt: 1 }]])
  })

  it('given a charge already made, when charge_payment comes again, then the same payment_id and no new effect', () => {
    const state: ParticipantState = { chaos: NO_CHAOS, effect: { effect_id: 'p-1', status: 'held', payload: { amount: 999 }, at: 0 } }
    const d = decideParticipant(paymentSpec, options, state, cmd('charge_payment', { amount: 999, attempt: 2 }), ctx())
    expect(d.effect).toBeUndefined()
    expect(d.messages[0]!.envelope.payload).toMatchObject({ payment_id: 'p-1', repeated: true, attempt: 2 })
  })

  it('given a charge, when refund_payment twice, then one refund and the same answer twice', () => {
    const held: ParticipantState = { chaos: NO_CHAOS, effect: { effect_id: 'p-1', status: 'held', payload: { amount: 999 }, at: 0 } }
    const first = decideParticipant(paymentSpec, options, held, cmd('refund_payment', { payment_id: 'p-1', attempt: 1 }), ctx())
    expect(first.effect?.status).toBe('released')
    const second = decideParticipant(paymentSpec, options, { ...held, effect: first.effect! }, cmd('refund_payment', { payment_id: 'p-1', attempt: 1 }), ctx())
    expect(second.effect).toBeUndefined()
    expect([first, second].map((d) => d.messages[0]!.envelope.payload.payment_id)).toEqual(['p-1', 'p-1'])
  })

  it('given a success rate of 0, then a retryable payment.failed', () => {
    const d = decideParticipant(paymentSpec, { ...options, successRate: 0 }, fresh, cmd('charge_payment', { amount: 1, attempt: 1 }), ctx(0))
    expect(d.messages[0]!.envelope).toMatchObject({ event_type: 'payment.failed', payload: { retryable: true, reason: 'card declined' } })
  })

  it('given chaos fail 1, then the next attempt fails retryably and the count goes down', () => {
    const d = decideParticipant(paymentSpec, options, { chaos: { fail: 1, reject: 0 } }, cmd('charge_payment', { amount: 1, attempt: 1 }), ctx())
    expect(d.messages[0]!.envelope.payload).toMatchObject({ retryable: true, reason: 'failed by chaos' })
    expect(d.chaos).toEqual({ fail: 0, reject: 0 })
  })
})

describe('inventory participant', () => {
  it('out of stock is not retryable', () => {
    const d = decideParticipant(inventorySpec, { ...options, successRate: 0 }, fresh, cmd('reserve_inventory', { items: [], attempt: 1 }), ctx(0.99))
    expect(d.messages[0]!.envelope).toMatchObject({ event_type: 'inventory.reserve-failed', payload: { retryable: false, reason: 'out of stock' } })
  })

  it('chaos reject wins over fail, and is not retryable', () => {
    const d = decideParticipant(inventorySpec, options, { chaos: { fail: 1, reject: 1 } }, cmd('reserve_inventory', { items: [], attempt: 1 }), ctx())
    expect(d.messages[0]!.envelope.payload).toMatchObject({ retryable: false })
    expect(d.chaos).toEqual({ fail: 1, reject: 0 })
  })

  it('set_chaos is acknowledged on the control topic, or refused when chaos is not allowed', () => {
    const set = cmd('set_chaos', { fail: 2 })
    const applied = decideParticipant(inventorySpec, options, fresh, set, ctx())
    expect(applied.chaos).toEqual({ fail: 2, reject: 0 })
    expect(applied.messages[0]).toMatchObject({ topic: 'control', envelope: { event_type: 'chaos.applied', causation_id: set.message_id } })
    const refused = decideParticipant(inventorySpec, { ...options, allowChaos: false }, fresh, set, ctx())
    expect(refused.chaos).toBeUndefined()
    expect(refused.messages[0]!.envelope.event_type).toBe('chaos.refused')
  })

  it('a command it does not know, or a bad attempt, is rejected to the dead-letter topic', () => {
    expect(decideParticipant(inventorySpec, options, fresh, cmd('charge_payment', { attempt: 1 }), ctx()).reject).toMatch(/does not handle/)
    expect(decideParticipant(inventorySpec, options, fresh, cmd('reserve_inventory', { attempt: 'x' }), ctx()).reject).toMatch(/attempt/)
  })
})
