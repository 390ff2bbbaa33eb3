import { Admin } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { changelogTopic } from '../../src/topics.js'
import { System, verifyClean } from './harness.js'

// A new deployment sized past the seed's 8/4/4: every role is given the same SAGA_PARTITIONS, the
// topics are created with it, and a role given other counts is refused, not let in to repartition.
const SETTING = 'order.events=16,inventory.commands=8,payment.commands=8'
const ORDERS = 12

describe('partition counts set by SAGA_PARTITIONS for a new deployment', () => {
  let system: System
  let admin: Admin
  const countsOf = async (topics: string[]): Promise<Record<string, number | undefined>> => {
    const metadata = await admin.metadata({ topics })
    return Object.fromEntries(topics.map((t) => [t, metadata.topics.get(t)?.partitionsCount]))
  }

  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_PARTITIONS: SETTING })
    admin = new Admin({ clientId: 'partition-counts-test', bootstrapBrokers: system.brokers.split(',') })
  }, 120_000)

  afterAll(async () => {
    await admin?.close()
    await system?.stop()
  })

  it('given order.events at 16 and the command topics at 8, when the five roles run orders, then every order completes, and the topics and changelogs have those counts', async () => {
    const ids: string[] = []
    for (let i = 0; i < ORDERS; i++) ids.push((await system.postOrder()).order_id)

    const finals = await system.waitForFinals(ids, 90_000)
    expect([...finals.values()]).toEqual(ids.map(() => 'order.completed'))
    await verifyClean(system, ORDERS)

    const p = system.prefix
    expect(await countsOf([...Object.values(system.topics), ...(['orchestrator', 'inventory', 'payment', 'notifier'] as const).map((r) => changelogTopic(p, r))])).toEqual({
      [`${p}order.events`]: 16,
      [`${p}inventory.commands`]: 8,
      [`${p}payment.commands`]: 8,
      [`${p}dlq`]: 1,
      [`${p}sagactl.control`]: 1,
      [`${p}sagactl.orchestrator.changelog`]: 16,
      [`${p}sagactl.inventory.changelog`]: 8,
      [`${p}sagactl.payment.changelog`]: 8,
      [`${p}sagactl.notifier.changelog`]: 16,
    })
    // Records went past the seed's 8: the producers key onto all 16 partitions.
    const created = (await system.read('orderEvents')).filter((m) => m.message?.type === 'order.created')
    expect(created.length).toBe(ORDERS)
    expect(created.some((m) => m.record.partition >= 8)).toBe(true)
  }, 180_000)

  it('given an order in a partition the seed does not have, when `saga show` reads it, then it finds the order in the partition the setting puts it in', async () => {
    const created = (await system.read('orderEvents')).find((m) => m.message?.type === 'order.created' && m.record.partition >= 8)
    expect(created).toBeDefined()

    const result = await system.cli(['saga', 'show', created!.message!.order_id, '--json'])

    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout) as { outcome: string; timeline: { type: string }[] }
    expect(report.outcome).toBe('completed')
    expect(report.timeline.map((e) => e.type)).toEqual(expect.arrayContaining(['order.created', 'reserve_inventory', 'charge_payment', 'order.completed']))
  }, 60_000)

  it('given the topics exist at 16/8/8, when a role starts with the default counts, then it exits 1 with one sentence, and no topic is repartitioned', async () => {
    const p = system.prefix

    const result = await system.cli(['start', 'orchestrator', '--instance-id', 'default-counts'], { SAGA_PARTITIONS: '' })

    expect(result.code).toBe(1)
    const said = result.stderr.replace(/\s+/g, ' ')
    expect(said).toContain(`topic "${p}order.events" has 16 partitions, sagactl needs 8`)
    expect(said).toContain(`topic "${p}inventory.commands" has 8 partitions, sagactl needs 4`)
    expect(said).toContain(`topic "${p}sagactl.orchestrator.changelog" has 16 partitions, sagactl needs 8`)
    expect(said).toContain('Give every role the SAGA_PARTITIONS (and saga) the topics were created with')
    expect(result.stderr).not.toMatch(/^\s+at /m)
    expect(await countsOf([`${p}order.events`, `${p}inventory.commands`])).toEqual({ [`${p}order.events`]: 16, [`${p}inventory.commands`]: 8 })
  }, 60_000)

  it('given a SAGA_PARTITIONS that is not topic=count pairs, when a role starts, then it exits 2 naming the variable, before connecting', async () => {
    const result = await system.cli(['start', 'notifier'], { SAGA_PARTITIONS: 'order.events=0', KAFKA_BROKERS: '127.0.0.1:1' })

    expect(result.code).toBe(2)
    expect(result.stderr.replace(/\s+/g, ' ')).toContain('SAGA_PARTITIONS must be topic=count pairs, comma-separated')
  }, 30_000)
})
