import { describe, expect, it } from 'vitest'

import { conform, RULES, type Driver, type Ids, type Reply } from '../../src/ops/conform.js'
import { payment } from '../../src/order-saga/payment.js'

/** A participant kept in memory that follows the contract: one effect per saga, undo remembered. */
function keeper(): Driver {
  const effects = new Map<string, { id: string; undone: boolean }>()
  const undoneFirst = new Set<string>()
  let n = 0
  const reply = (outcome: Reply['outcome'], effectId?: string | null, repeated = false): Reply[] => [{ outcome, ...(effectId !== undefined ? { effectId } : {}), ...(repeated ? { repeated } : {}), raw: outcome }]
  return {
    via: 'kafka',
    target: 'memory',
    async act(ids: Ids, _attempt, o = {}) {
      if (undoneFirst.has(ids.saga_id)) return o.abortAfterMs ? [] : reply('declined')
      const known = effects.get(ids.saga_id)
      if (known) return o.abortAfterMs ? [] : reply('done', known.id, true)
      const effect = { id: `e-${++n}`, undone: false }
      effects.set(ids.saga_id, effect)
      return o.abortAfterMs ? [] : reply('done', effect.id)
    },
    async undo(ids: Ids) {
      const known = effects.get(ids.saga_id)
      if (!known) {
        undoneFirst.add(ids.saga_id)
        return reply('confirmed', null)
      }
      const repeated = known.undone
      known.undone = true
      return reply('confirmed', known.id, repeated)
    },
    async malformed() {
      return { ok: true, seen: 'dead-lettered' }
    },
    async close() {},
  }
}

describe('conform: the rules, on participants kept in memory', () => {
  it('given a participant that keeps the contract, then every rule passes', async () => {
    const report = await conform(keeper(), payment)
    expect(report.rules.map((r) => [r.id, r.ok])).toEqual(RULES.map((r) => [r.id, true]))
    expect(report.ok).toBe(true)
  })

  it('given a participant that never answers, then every rule fails: none passes for want of evidence', async () => {
    const silent: Driver = { via: 'kafka', target: 'nowhere', act: async () => [], undo: async () => [], malformed: async () => ({ ok: false, seen: 'no dead letter' }), close: async () => {} }
    const report = await conform(silent, payment)
    expect(report.rules.filter((r) => r.ok)).toEqual([])
    expect(report.ok).toBe(false)
  })

  it('given a participant that acts anew on every command, then the idempotency rules fail and say what was seen', async () => {
    let n = 0
    const careless: Driver = { ...keeper(), act: async (_ids, _a, o = {}) => (o.abortAfterMs ? [] : [{ outcome: 'done', effectId: `e-${++n}`, raw: 'done' }]) }
    const report = await conform(careless, payment)
    const failed = report.rules.filter((r) => !r.ok).map((r) => r.id)
    // Its undo knows nothing of those effects either, so both undos are fresh ones.
    expect(failed).toEqual(['same-command-twice', 'undo-twice', 'act-after-undo', 'retry-after-timeout'])
    expect(report.rules.find((r) => r.id === 'same-command-twice')!.seen).toBe('first: done e-1; again: done e-2')
  })

  it('given a reply that breaks the envelope, then the envelope rule fails with the problem', async () => {
    const sloppy: Driver = { ...keeper() }
    const base = keeper()
    sloppy.act = async (ids, attempt, o) => (await base.act(ids, attempt, o)).map((r) => ({ ...r, malformed: 'reply m-1: causation_id is not the command' }))
    const report = await conform(sloppy, payment)
    expect(report.rules.find((r) => r.id === 'envelope')).toMatchObject({ ok: false, seen: expect.stringContaining('causation_id is not the command') })
  })
})
