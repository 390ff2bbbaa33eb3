import { randomUUID } from 'node:crypto'

import { Admin, ConfigResourceTypes, ConfigSources, FindCoordinatorKeyTypes } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startLocalCluster, type LocalCluster } from '../../src/broker/local-cluster.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { ALL_ROLES, System, waitFor } from './harness.js'

const ORDERS = 200
const KILL_AFTER = 60
const IN_FLIGHT = 8

/** The gist of a role's log line: its message and error, or the plain line oclif printed. */
function reason(line: string): string {
  try {
    const parsed = JSON.parse(line) as { msg?: string; err?: { message?: string } }
    return [parsed.msg, parsed.err?.message].filter(Boolean).join(': ')
  } catch {
    return line.trim()
  }
}

/** Why each role left its group and joined again, if it did: reported, for the README's numbers. */
function printRejoins(system: System): void {
  for (const role of ALL_ROLES) {
    for (const line of system.logs(role).filter((l) => l.msg === 'the consumer failed; leaving and joining again')) {
      const err = line.err as { message?: string; errors?: { message?: string }[] } | undefined
      console.log(`${role} joined again at ${String(line.time)} because: ${err?.message ?? ''} ${(err?.errors ?? []).map((e) => e.message).join(' | ')}`.slice(0, 500))
    }
  }
}

const RESTORED = 'partition assigned; state restored from the changelog'

/** Per role, how often it left its group and joined again, and restored a partition, since `before` (restores per role). */
function rejoinsAndRestores(system: System, before: Map<string, number>): string[] {
  return ALL_ROLES.map((role) => {
    const lines = system.logs(role)
    return `${role}: ${lines.filter((l) => l.msg === 'the consumer failed; leaving and joining again').length} rejoins, ${lines.filter((l) => l.msg === RESTORED).length - (before.get(role) ?? 0)} restores`
  })
}

/** POST /orders until accepted: the same key each time, so a retried request stays one order. */
async function placeOrder(url: string, user: string): Promise<string> {
  const key = randomUUID()
  const { order_id } = await waitFor(
    () => fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify({ user_id: user, items: [{ sku: 'disk', qty: 1 }], amount: 4200 }) }).then(async (r) => (r.status === 202 ? ((await r.json()) as { order_id: string }) : undefined)),
    'POST /orders to be accepted',
    90_000,
    250,
  )
  return order_id
}

describe('a 3-broker cluster (RF 3, min.insync.replicas 2) loses a broker under load', () => {
  let cluster: LocalCluster
  let system: System
  let admin: Admin
  const restoresBefore = new Map<string, number>()

  beforeAll(async () => {
    cluster = await startLocalCluster({ log: (line) => console.log(`[cluster] ${line}`) })
    admin = new Admin({ clientId: 'failover-test', bootstrapBrokers: cluster.brokers.split(',') })
    // Supervised like a production deployment, so that an exit shows as one below, not as a loss.
    system = await System.start(ALL_ROLES, { SAGA_REPLICATION_FACTOR: '3', SAGA_MIN_INSYNC_REPLICAS: '2', LOG_LEVEL: 'info' }, { brokers: cluster.brokers, supervise: true })
    // Each role in a group restores every partition once as it starts; any restore after that means a member lost its partitions.
    const inputs = { orchestrator: system.topics.orderEvents, notifier: system.topics.orderEvents, inventory: system.topics.inventoryCommands, payment: system.topics.paymentCommands }
    const metadata = await admin.metadata({ topics: Object.values(inputs) })
    await waitFor(() => Object.entries(inputs).every(([role, topic]) => system.logs(role).filter((l) => l.msg === RESTORED).length >= metadata.topics.get(topic)!.partitionsCount), 'every partition restored once at start')
    for (const role of ALL_ROLES) restoresBefore.set(role, system.logs(role).filter((l) => l.msg === RESTORED).length)
  })
  afterAll(async () => {
    await system?.stop()
    await admin?.close()
    await cluster?.stop()
  })

  it('creates every saga topic with 3 replicas and min.insync.replicas=2 set on the topic itself', async () => {
    const names = Object.values(system.topics)
    const metadata = await admin.metadata({ topics: names, forceUpdate: true })
    for (const name of names) {
      const partitions = metadata.topics.get(name)?.partitions ?? []
      expect(partitions.length, name).toBeGreaterThan(0)
      for (const p of partitions) expect(p.replicas, name).toHaveLength(3)
    }
    const described = await admin.describeConfigs({ resources: names.map((resourceName) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName, configurationKeys: ['min.insync.replicas'] })) })
    for (const topic of described) {
      // The cluster's default is also 2: only a topic-level source proves sagactl set it.
      expect(topic.configs[0], topic.resourceName).toMatchObject({ name: 'min.insync.replicas', value: '2', configSource: ConfigSources.TOPIC_CONFIG })
    }
  })

  it(`${ORDERS} orders with the group coordinator's broker SIGKILLed after ${KILL_AFTER}: every order ends once, and verify is clean`, async () => {
    // One offsets partition (local-cluster.ts): one node coordinates every group, the harshest node to lose.
    const coordinators = await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: ALL_ROLES.map((role) => `${system.prefix}sagactl-${role}`) })
    expect(new Set(coordinators.map((c) => c.nodeId)).size).toBe(1)
    const victim = coordinators[0]!.nodeId
    const events = await admin.metadata({ topics: [system.topics.orderEvents], forceUpdate: true })
    const led = events.topics.get(system.topics.orderEvents)!.partitions.filter((p) => p.leader === victim).length
    console.log(`killing node ${victim}: group coordinator, leader of ${led}/8 order.events partitions`)

    const orderIds: string[] = []
    let killed: Promise<void> | undefined
    let next = 0
    const submitOne = async (): Promise<void> => {
      orderIds.push(await placeOrder(system.url, 'failover'))
      if (orderIds.length === KILL_AFTER) killed = cluster.kill(victim)
    }
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < ORDERS) {
          next++
          await submitOne()
        }
      }),
    )
    await killed
    expect(cluster.nodes.find((n) => n.id === victim)!.pid).toBeUndefined()
    expect(new Set(orderIds).size).toBe(ORDERS)

    const finals = await system.waitForFinals(orderIds, 180_000)
    expect([...finals.values()].filter((type) => type === 'order.completed')).toHaveLength(ORDERS)

    // The node comes back on its old data and the cluster is whole again.
    await cluster.restart(victim)
    expect(await cluster.liveBrokers()).toBe(3)

    const verify = await system.cli(['verify', '--wait-quiet', '3', '--json'])
    const report = JSON.parse(verify.stdout) as VerifyReport
    expect(report.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, orders: ORDERS, completed: ORDERS, cancelled: 0 })
    expect(verify.code).toBe(0)
    // A lost connection is handled inside the process: no role exits.
    expect(system.unexpectedExits.map((exit) => `${exit.role} (exit ${exit.code}): ${exit.tail.map(reason).filter(Boolean).join(' | ')}`)).toEqual([])
    const rejoined = ALL_ROLES.filter((role) => system.logs(role).some((l) => l.msg === 'consuming again'))
    const inPlace = ALL_ROLES.filter((role) => system.logs(role).some((l) => l.msg === 'the consumer has the broker again; consuming on, no partition moved'))
    console.log(`roles that left their group and joined again: ${rejoined.join(', ') || 'none'}; roles that rode it out in place: ${inPlace.join(', ') || 'none'}`)
    printRejoins(system)
    // The coordinator's node died, and no member lost its partitions: none left its group, none
    // restored a partition from its changelog again.
    expect(rejoinsAndRestores(system, restoresBefore)).toEqual(ALL_ROLES.map((role) => `${role}: 0 rejoins, 0 restores`))
  }, 420_000)

  it('a rolling restart under load (50/s): each broker in turn stopped (SIGTERM) and started, the next once every partition is in sync again; no role exits, every order ends once', async () => {
    const before = system.unexpectedExits.length
    const inSync = async (): Promise<boolean> => {
      const metadata = await admin.metadata({ topics: Object.values(system.topics), forceUpdate: true })
      return [...metadata.topics.values()].every((t) => t.partitions.every((p) => p.isr.length === p.replicas.length && p.leader >= 0))
    }
    await waitFor(inSync, 'every partition in sync before the roll', 120_000, 1000)

    const orderIds: string[] = []
    const placed: Promise<void>[] = []
    const submit = async (): Promise<void> => void orderIds.push(await placeOrder(system.url, 'rolling'))
    // 50/s: five orders every 100 ms, for as long as the roll lasts.
    const ticker = setInterval(() => placed.push(...Array.from({ length: 5 }, submit)), 100)
    const rollStart = Date.now()
    try {
      await waitFor(() => orderIds.length >= 100, 'load before the roll')
      for (const node of cluster.nodes) {
        console.log(`node ${node.id} stopped (SIGTERM) ${((Date.now() - rollStart) / 1000).toFixed(1)} s into the roll`)
        await cluster.kill(node.id, 'SIGTERM')
        console.log(`node ${node.id} gone ${((Date.now() - rollStart) / 1000).toFixed(1)} s into the roll`)
        await cluster.restart(node.id)
        await waitFor(inSync, `every partition in sync after node ${node.id} came back`, 180_000, 1000)
        console.log(`node ${node.id} restarted and in sync, ${((Date.now() - rollStart) / 1000).toFixed(1)} s into the roll`)
      }
      const rolled = orderIds.length
      await waitFor(() => orderIds.length >= rolled + 100, 'load after the roll')
    } finally {
      clearInterval(ticker)
      await Promise.all(placed)
    }

    await system.waitForFinals(orderIds, 240_000)
    expect(system.unexpectedExits.slice(before).map((exit) => `${exit.role} (exit ${exit.code}): ${exit.tail.map(reason).filter(Boolean).join(' | ')}`)).toEqual([])

    const verify = await system.cli(['verify', '--wait-quiet', '3', '--json'])
    const report = JSON.parse(verify.stdout) as VerifyReport
    expect(report.breaches).toEqual([])
    expect(report).toMatchObject({ ok: true, orders: ORDERS + orderIds.length, unfinished: 0 })
    expect(verify.code).toBe(0)

    // Reported, not asserted: from each order.created record to its final event's, by broker timestamps.
    const created = new Map<string, number>()
    const finished = new Map<string, number>()
    for (const { record, message } of await system.read('orderEvents')) {
      if (!message || !orderIds.includes(message.order_id)) continue
      if (message.type === 'order.created') created.set(message.order_id, Number(record.timestamp))
      if (message.type === 'order.completed' || message.type === 'order.cancelled') finished.set(message.order_id, Number(record.timestamp))
    }
    const latencies = orderIds.map((id) => finished.get(id)! - created.get(id)!).sort((a, b) => a - b)
    // Where the slowest saga waited: each of its records, by topic and broker timestamp, from its order.created.
    const slowest = orderIds.reduce((a, b) => (finished.get(b)! - created.get(b)! > finished.get(a)! - created.get(a)! ? b : a))
    const hops: string[] = []
    for (const topic of ['orderEvents', 'inventoryCommands', 'paymentCommands'] as const) {
      for (const { record, message } of await system.read(topic)) {
        if (message?.order_id === slowest) hops.push(`${Number(record.timestamp) - created.get(slowest)!} ms ${message.type} (${topic}[${record.partition}])`)
      }
    }
    for (const role of ALL_ROLES) {
      const during = system.logs(role).filter((l) => l.level >= 40 && Number(l.time) >= rollStart)
      console.log(`${role} during the roll: ${during.map((l) => `${((Number(l.time) - rollStart) / 1000).toFixed(1)} s ${l.msg}${l.err ? ` (${String((l.err as { message?: string }).message).slice(0, 120)})` : ''}${l.reason ? ` (${String(l.reason)})` : ''}${Array.isArray(l.causes) ? ` [${(l.causes as string[]).map((c) => c.slice(0, 60)).join(' | ')}]` : ''}`).join('; ').slice(0, 2000) || 'nothing above info'}`)
    }
    console.log(`the slowest saga, ${slowest}, started ${((created.get(slowest)! - rollStart) / 1000).toFixed(1)} s into the roll: ${hops.sort((a, b) => parseInt(a) - parseInt(b)).join(' → ')}`)
    const p = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
    const rejoins = ALL_ROLES.map((role) => `${role} ${system.logs(role).filter((l) => l.msg === 'the consumer failed; leaving and joining again').length}`)
    console.log(`rejoins (partitions dropped and restored) per role, over both tests: ${rejoins.join(', ')}`)
    printRejoins(system)
    expect(rejoinsAndRestores(system, restoresBefore)).toEqual(ALL_ROLES.map((role) => `${role}: 0 rejoins, 0 restores`))
    console.log(`rolling restart: ${orderIds.length} orders, roll ${((Date.now() - rollStart) / 1000).toFixed(0)} s; saga latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, longest ${latencies.at(-1)} ms`)
  }, 900_000)
})
