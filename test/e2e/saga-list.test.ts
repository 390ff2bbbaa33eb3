import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { SagaList } from '../../src/services/orchestrator/saga-list.js'
import { System, waitFor } from './harness.js'

describe('saga list reads the current state of every saga from the changelog', () => {
  let system: System
  const ids: Record<'completed' | 'cancelled' | 'waiting', string> = { completed: '', cancelled: '', waiting: '' }

  async function list(...flags: string[]): Promise<SagaList> {
    const result = await system.cli(['saga', 'list', '--json', ...flags])
    if (result.code !== 0) throw new Error(`saga list ${flags.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`)
    return JSON.parse(result.stdout) as SagaList
  }

  beforeAll(async () => {
    // A retry delay far beyond the test keeps one saga in waiting_retry while we look at it.
    system = await System.start(undefined, { SAGA_RETRY_MIN_DELAY_MS: '600000', SAGA_RETRY_MAX_DELAY_MS: '600000' })
    ids.completed = (await system.postOrder()).order_id
    await system.waitForFinal(ids.completed)
    await system.chaos('inventory', '--reject', '1')
    ids.cancelled = (await system.postOrder()).order_id
    await system.waitForFinal(ids.cancelled)
    await system.chaos('payment', '--fail', '1')
    ids.waiting = (await system.postOrder()).order_id
    await waitFor(async () => (await list('--status', 'waiting_retry')).sagas.some((s) => s.order_id === ids.waiting), 'the third saga to wait for its retry')
  })
  afterAll(async () => {
    await system?.stop()
  })

  it('lists every saga, newest first, with its status', async () => {
    const { sagas, matched } = await list()
    expect(matched).toBe(3)
    expect(sagas.map((s) => [s.order_id, s.status])).toEqual([
      [ids.waiting, 'waiting_retry'],
      [ids.cancelled, 'cancelled'],
      [ids.completed, 'completed'],
    ])
    expect(sagas[1]!.reason).toMatch(/stock|reject|chaos/i)
  })

  it('--status filters, repeated or comma-separated', async () => {
    expect((await list('--status', 'cancelled,completed')).sagas.map((s) => s.order_id)).toEqual([ids.cancelled, ids.completed])
    expect((await list('--status', 'waiting_retry', '--status', 'stuck')).sagas.map((s) => s.order_id)).toEqual([ids.waiting])
  })

  it('--limit keeps the newest, --older-than the oldest', async () => {
    expect(await list('--limit', '1')).toMatchObject({ matched: 3, sagas: [{ order_id: ids.waiting }] })
    expect((await list('--older-than', '1h')).sagas).toEqual([])
  })

  it('prints a table without --json', async () => {
    const result = await system.cli(['saga', 'list', '--status', 'waiting_retry'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`waiting_retry\\s+charge_payment\\s+1\\s+${ids.waiting}`))
  })

  it('refuses a bad flag value with exit 2 and says what it wanted', async () => {
    const status = await system.cli(['saga', 'list', '--status', 'sleeping'])
    expect(status.code).toBe(2)
    expect(status.stderr).toMatch(/--status=sleeping to be one of: running, waiting_retry/)
    const age = await system.cli(['saga', 'list', '--older-than', 'yesterday'])
    expect(age.code).toBe(2)
    expect(age.stderr).toMatch(/--older-than must be a duration such as 5m/)
    expect((await system.cli(['saga', 'list', '--limit', '0'])).code).toBe(2)
  })
})
