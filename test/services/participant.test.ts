import { describe, expect, it } from 'vitest'

import { command, type Message } from '../../src/envelope.js'
import type { StepCommand, StepContext, StepResult } from '../../src/saga/define.js'
import { decideParticipant, idempotencyKey, inventorySpec, NO_CHAOS, paymentSpec, prepareParticipant, type ParticipantState } from '../../src/services/participant.js'

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

describe('a participant whose step is code (act/undo)', () => {
  const calls: { type: string; key: string; attempt: number; payload: Record<string, unknown> }[] = []
  let answer: () => Promise<StepResult> = async () => ({ ok: true, payload: { transfer_id: 'bank-1' } })
  const spec = {
    ...paymentSpec,
    step: 'charge_payment',
    act: {
      ...paymentSpec.act,
      code: async (c: StepCommand, x: StepContext) => {
        calls.push({ type: c.type, key: x.idempotencyKey, attempt: x.attempt, payload: c.payload })
        return answer()
      },
    },
    undo: {
      ...paymentSpec.undo,
      code: async (c: StepCommand, x: StepContext) => {
        calls.push({ type: c.type, key: x.idempotencyKey, attempt: x.attempt, payload: c.payload })
        return answer()
      },
    },
  }
  const run = async (state: ParticipantState, message: Message) => {
    const prepared = await prepareParticipant(spec, options, state, message, 0)
    return { prepared, decision: decideParticipant(spec, options, state, message, { ...ctx(), ...(prepared ? { prepared } : {}) }) }
  }
  const reset = (next: () => Promise<StepResult>) => {
    calls.length = 0
    answer = next
  }

  it('given no effect, when the command comes, then act is called once with the step’s key and the service’s id becomes the effect', async () => {
    reset(async () => ({ ok: true, payload: { payment_id: 'bank-1', fee: 2 } }))
    const { decision } = await run(fresh, cmd('charge_payment', { amount: 999, attempt: 2 }))
    expect(calls).toEqual([{ type: 'charge_payment', key: idempotencyKey('s1', 'charge_payment', 'act'), attempt: 2, payload: { amount: 999, attempt: 2 } }])
    expect(decision.effect).toMatchObject({ effect_id: 'bank-1', status: 'held' })
    expect(decision.messages[0]!.envelope).toMatchObject({ event_type: 'payment.succeeded', payload: { payment_id: 'bank-1', fee: 2, amount: 999 } })
  })

  it('given the key, then it is the same on every attempt of the saga’s step, and another for its undo and for another saga', () => {
    expect(idempotencyKey('s1', 'charge_payment', 'act')).toBe(idempotencyKey('s1', 'charge_payment', 'act'))
    expect(idempotencyKey('s1', 'charge_payment', 'undo')).not.toBe(idempotencyKey('s1', 'charge_payment', 'act'))
    expect(idempotencyKey('s2', 'charge_payment', 'act')).not.toBe(idempotencyKey('s1', 'charge_payment', 'act'))
  })

  it('given an effect already held, when the command comes again, then no call and the same answer', async () => {
    reset(async () => ({ ok: true }))
    const held: ParticipantState = { chaos: NO_CHAOS, effect: { effect_id: 'bank-1', status: 'held', payload: {}, at: 0 } }
    const { prepared, decision } = await run(held, cmd('charge_payment', { amount: 999, attempt: 3 }))
    expect(prepared).toBeUndefined()
    expect(calls).toEqual([])
    expect(decision.messages[0]!.envelope.payload).toMatchObject({ payment_id: 'bank-1', repeated: true })
  })

  it('when act declines, then a failure that is not retried; when it throws, a failure that is', async () => {
    reset(async () => ({ declined: 'account closed' }))
    const declined = await run(fresh, cmd('charge_payment', { amount: 1, attempt: 1 }))
    expect(declined.decision.messages[0]!.envelope).toMatchObject({ event_type: 'payment.failed', payload: { retryable: false, reason: 'account closed' } })
    reset(async () => {
      throw new Error('bank busy')
    })
    const thrown = await run(fresh, cmd('charge_payment', { amount: 1, attempt: 1 }))
    expect(thrown.decision.messages[0]!.envelope).toMatchObject({ event_type: 'payment.failed', payload: { retryable: true, reason: 'bank busy' } })
    expect(thrown.decision.effect).toBeUndefined()
  })

  it('when act answers something else, then a retryable failure that says what was expected', async () => {
    reset(async () => 'yes' as unknown as StepResult)
    const { decision } = await run(fresh, cmd('charge_payment', { amount: 1, attempt: 1 }))
    expect(decision.messages[0]!.envelope.payload).toMatchObject({ retryable: true, reason: expect.stringContaining('neither { ok: true } nor { declined') })
  })

  it('given chaos, then chaos decides and act is not called', async () => {
    reset(async () => ({ ok: true }))
    const { decision } = await run({ chaos: { fail: 1, reject: 0 } }, cmd('charge_payment', { amount: 1, attempt: 1 }))
    expect(calls).toEqual([])
    expect(decision.messages[0]!.envelope.payload).toMatchObject({ reason: 'failed by chaos' })
  })

  it('given a held effect, when undo throws, then no answer (the orchestrator resends) and the effect stays held; when it works, released', async () => {
    const held: ParticipantState = { chaos: NO_CHAOS, effect: { effect_id: 'bank-1', status: 'held', payload: { amount: 5 }, at: 0 } }
    reset(async () => {
      throw new Error('bank busy')
    })
    const failed = await run(held, cmd('refund_payment', { attempt: 1 }))
    expect(failed.decision.messages).toEqual([])
    expect(failed.decision.effect).toBeUndefined()
    reset(async () => ({ ok: true }))
    const done = await run(held, cmd('refund_payment', { attempt: 2 }))
    expect(calls).toEqual([{ type: 'refund_payment', key: idempotencyKey('s1', 'charge_payment', 'undo'), attempt: 2, payload: { amount: 5, attempt: 2, payment_id: 'bank-1' } }])
    expect(done.decision.effect?.status).toBe('released')
    expect(done.decision.messages[0]!.envelope).toMatchObject({ event_type: 'payment.refunded', payload: { payment_id: 'bank-1' } })
  })
})

describe('a participant whose undo comes before its act', () => {
  it('given nothing done, when the undo comes, then it is confirmed with no effect and remembered; the late act is then not carried out', () => {
    const undo = decideParticipant(paymentSpec, options, fresh, cmd('refund_payment', { attempt: 1 }), ctx())
    expect(undo.messages[0]!.envelope).toMatchObject({ event_type: 'payment.refunded', payload: { payment_id: null, note: 'nothing to undo' } })
    expect(undo.effect).toMatchObject({ status: 'released', undone_first: true })
    const late = decideParticipant(paymentSpec, options, { chaos: NO_CHAOS, effect: undo.effect! }, cmd('charge_payment', { amount: 5, attempt: 1 }), ctx())
    expect(late.effect).toBeUndefined()
    expect(late.messages[0]!.envelope).toMatchObject({ event_type: 'payment.failed', payload: { retryable: false, reason: 'charge_payment came after its undo: not carried out' } })
    const again = decideParticipant(paymentSpec, options, { chaos: NO_CHAOS, effect: undo.effect! }, cmd('refund_payment', { attempt: 2 }), ctx())
    expect(again.messages[0]!.envelope.payload).toMatchObject({ payment_id: null, repeated: true })
  })
})

describe('step code that ignores its timeout', () => {
  it('given code that never answers, when the step’s timeout passes, then a retryable failure and the partition goes on', async () => {
    const spec = { ...paymentSpec, step: 'charge_payment', act: { ...paymentSpec.act, code: () => new Promise<StepResult>(() => undefined) } }
    const prepared = await prepareParticipant(spec, { ...options, stepTimeoutMs: 50 }, fresh, cmd('charge_payment', { amount: 1, attempt: 1 }), 0)
    expect(prepared).toEqual({ kind: 'error', reason: 'charge_payment did not finish within 50 ms' })
  })
})
