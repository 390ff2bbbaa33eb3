import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { parseEnvelope, type Message } from '../../src/envelope.js'
import type { RoleName } from '../../src/saga/define.js'
import { verifyMessages } from '../../src/ops/verify.js'
import { System } from './harness.js'

// For each role with effects: the message whose handling it dies in, and what that handling
// publishes. after-publish dies once the output is acknowledged, before the partition's changelog
// and offset are committed (the restart handles the record again, to the same ids); after-changelog
// dies once they are committed too (nothing is handled again, and nothing is missing).
const cases: [RoleName, string, string][] = [
  ['orchestrator', 'inventory.reserved', 'charge_payment'],
  ['inventory', 'reserve_inventory', 'inventory.reserved'],
  ['payment', 'charge_payment', 'payment.succeeded'],
]
const points = ['before-commit', 'after-commit', 'after-publish', 'after-changelog'] as const

describe('a role killed at each crash point, then restarted: the saga completes, nothing twice', () => {
  let system: System
  beforeAll(async () => {
    system = await System.start()
  })
  afterAll(async () => {
    await system?.stop()
  })

  /** Every message of the order on the saga's topics; every message of every order without one. */
  async function messagesOf(orderId?: string): Promise<Message[]> {
    const all: Message[] = []
    for (const topic of ['orderEvents', 'inventoryCommands', 'paymentCommands'] as const) {
      for (const m of await system.read(topic)) {
        const parsed = parseEnvelope(m.record.value)
        if (parsed.ok && (orderId === undefined || parsed.message.order_id === orderId)) all.push(parsed.message)
      }
    }
    return all
  }

  for (const [role, handled, published] of cases) {
    for (const point of points) {
      const type = point === 'after-publish' ? published : handled
      it(`${role} dies ${point} (${type})`, async () => {
        await system.kill(role, 'SIGTERM')
        await system.startRole(role, { SAGA_CRASH_AT: point, SAGA_CRASH_ON: type })
        const { order_id } = await system.postOrder()
        // SIGKILL: the exit code is null, the signal ends it.
        expect(await system.exited(role)).toBeNull()
        expect(system.logs(role).some((l) => l.msg === 'crash point reached; dying abruptly' && l.crash === point)).toBe(true)

        await system.startRole(role)
        const events = await system.waitForFinal(order_id)
        // The dying role may have handled later records of the order before its last commit (after-changelog
        // dies when the commit covering `type` lands, not the next one): its restart handles them again,
        // and publishes their outputs again with the same message_id, the final event too. Consumers
        // skip such a copy; count by message_id.
        const finals = events.filter((e) => e.type === 'order.completed' || e.type === 'order.cancelled')
        if (finals.length > 1) console.log(`${role} ${point}: ${finals.length} copies of the final event: ${finals.map((e) => `${e.type} ${e.message_id}`).join(', ')}`)
        expect([...new Map(finals.map((e) => [e.message_id, e.type])).values()]).toEqual(['order.completed'])
        const verdict = verifyMessages(await messagesOf(order_id))
        expect(verdict.breaches).toEqual([])
        expect(verdict).toMatchObject({ orders: 1, completed: 1 })
        const distinct = (t: string) => new Set(events.filter((e) => e.type === t).map((e) => e.message_id)).size
        expect([distinct('inventory.reserved'), distinct('payment.succeeded'), distinct('order.completed')]).toEqual([1, 1, 1])
        // The crash may have hit an earlier order read again at start: every order so far is whole.
        const everything = verifyMessages(await messagesOf())
        expect(everything.breaches).toEqual([])
      })
    }
  }
})
