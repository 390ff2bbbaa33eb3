import fs from 'node:fs'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import type { RoleName } from '../../src/saga/define.js'
import { owned, post, System, verifyClean, waitFor } from './harness.js'

/**
 * A zombie: an instance frozen (SIGSTOP) past its session timeout, so the group gives its
 * partitions to a sibling, while it holds a batch it committed to SQLite but did not publish and a
 * timer that falls due while it sleeps. Woken (SIGCONT), it must change no outcome.
 *
 * The freeze comes from the runtime's own crash point (`after-commit`, SIGSTOP): the batch is in
 * the file, its relay has not run. So the zombie always holds unpublished work, not only when a
 * signal from outside happens to land in that window.
 */
describe('zombies: an instance frozen past its session changes no outcome when it wakes', () => {
  let system: System | undefined
  afterEach(async () => {
    // A frozen process ignores SIGTERM until it runs again.
    for (const rp of system?.roles.values() ?? []) rp.child.kill('SIGCONT')
    await system?.stop()
    system = undefined
  })

  /** Open-loop load through the api: `perTick` orders every 200 ms until stopped. */
  function load(s: System, perTick: number): { ids: string[]; stop: () => Promise<void> } {
    const ids: string[] = []
    const placed: Promise<void>[] = []
    const ticker = setInterval(() => placed.push(Promise.all(Array.from({ length: perTick }, () => post(s.port))).then((batch) => void ids.push(...batch))), 200)
    return {
      ids,
      stop: async () => {
        clearInterval(ticker)
        await Promise.all(placed)
      },
    }
  }

  async function zombie(role: RoleName, freezeOn: string, partitions: number, others: RoleName[]): Promise<void> {
    system = new System({ PAYMENT_SUCCESS_RATE: '0.6', SAGA_RETRY_MIN_DELAY_MS: '300', SAGA_RETRY_MAX_DELAY_MS: '600' }, { supervise: true })
    system.port = await freePort()
    const s = system
    const frozen = `${role}@z1`
    const sibling = `${role}@z2`
    await Promise.all([
      s.startRole(role, { SAGA_CRASH_AT: 'after-commit', SAGA_CRASH_ON: freezeOn, SAGA_CRASH_SIGNAL: 'SIGSTOP' }, 'z1'),
      s.startRole(role, {}, 'z2'),
      ...others.map((r) => s.startRole(r)),
    ])
    await waitFor(() => owned(s, frozen).size + owned(s, sibling).size === partitions && owned(s, frozen).size > 0 && owned(s, sibling).size > 0, `both ${role} instances to own partitions`, 60_000)

    const orders = load(s, 4)
    await waitFor(() => s.logs(frozen).some((l) => l.msg === 'crash point reached; freezing'), `${frozen} to freeze on ${freezeOn}`, 60_000)
    const frozenAt = Date.now()
    // Past the session timeout the group moves everything to the sibling, which restores the
    // partitions from the changelog and fences the frozen instance's writers.
    await waitFor(() => owned(s, sibling).size === partitions, `${sibling} to take over all ${partitions} partitions`, 60_000)
    expect(Date.now() - frozenAt).toBeGreaterThan(5_000)
    const before = orders.ids.length
    await waitFor(() => orders.ids.length >= before + 40, 'load on the sibling alone')

    // Wake the zombie while the load goes on: it still has its committed batch to relay, and its
    // retry timers (300–600 ms) fell due long ago.
    // A supervised restart replaces the role's entry: keep the zombie's own process.
    const zombieProcess = s.roles.get(frozen)!
    zombieProcess.child.kill('SIGCONT')
    const woken = orders.ids.length
    await waitFor(() => orders.ids.length >= woken + 60, 'load after the wake-up')
    await orders.stop()

    await s.waitForFinals(orders.ids, 120_000)
    // verify fails on a second final event, a double charge or reservation, an effect left
    // standing on a cancelled order, and one message_id with two bodies.
    await verifyClean(s, orders.ids.length)
    // The woken instance learnt that its partitions had moved: it was refused, or told, or left.
    const lines = zombieProcess.lines
    const after = lines.slice(lines.findIndex((l) => l.msg === 'crash point reached; freezing') + 1)
    const keep = process.env.SAGA_TEST_LOG_DIR
    if (keep) {
      fs.mkdirSync(keep, { recursive: true })
      fs.writeFileSync(path.join(keep, `${s.prefix}zombie-${role}.log`), zombieProcess.raw.join('\n'))
    }
    expect(after.map((l) => l.msg).find((m) => /fenced|revoked|rejoin/i.test(m))).toBeDefined()
  }

  it('an orchestrator frozen with a handled payment.failed and its retry timer due', async () => {
    await zombie('orchestrator', 'payment.failed', 8, ['inventory', 'payment', 'api', 'notifier'])
  }, 300_000)

  it('a payment participant frozen with a handled charge_payment', async () => {
    await zombie('payment', 'charge_payment', 4, ['orchestrator', 'inventory', 'api', 'notifier'])
  }, 300_000)
})
