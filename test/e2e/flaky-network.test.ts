import net from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort, startLocalKafka, type LocalKafka } from '../../src/broker/local-kafka.js'
import { ALL_ROLES, post, System, verifyClean, waitFor } from './harness.js'

/**
 * A TCP proxy in front of the broker that the broker advertises, so every client connection goes
 * through it. While `flaky`, it cuts every open connection every `cutEveryMs` (requests in flight
 * included) and holds each chunk of the connections it picks for a while before passing it on, in
 * order.
 */
class FlakyProxy {
  readonly #server: net.Server
  readonly #open = new Set<net.Socket>()
  #cutter: NodeJS.Timeout | undefined
  cuts = 0
  connections = 0

  constructor(
    readonly port: number,
    upstreamPort: number,
  ) {
    this.#server = net.createServer((client) => {
      this.connections++
      const upstream = net.connect(upstreamPort, '127.0.0.1')
      // One connection in three is slow: 5–40 ms per chunk, each way.
      const slow = this.#cutter !== undefined && this.connections % 3 === 0
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        let queue = Promise.resolve()
        from.on('data', (chunk) => {
          if (!slow) return void to.write(chunk)
          queue = queue.then(() => new Promise<void>((resolve) => setTimeout(() => (to.destroyed ? undefined : to.write(chunk), resolve()), 5 + Math.random() * 35)))
        })
        from.on('close', () => to.destroy())
        from.on('error', () => to.destroy())
        this.#open.add(from)
        from.on('close', () => this.#open.delete(from))
      }
    })
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.port, '127.0.0.1', resolve))
  }

  flaky(cutEveryMs: number): void {
    this.#cutter = setInterval(() => {
      this.cuts++
      for (const socket of this.#open) socket.destroy()
    }, cutEveryMs)
  }

  steady(): void {
    clearInterval(this.#cutter)
    this.#cutter = undefined
  }

  async close(): Promise<void> {
    this.steady()
    for (const socket of this.#open) socket.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

describe('a flaky network between the roles and the broker', () => {
  let broker: LocalKafka
  let proxy: FlakyProxy
  let system: System

  beforeAll(async () => {
    const port = await freePort()
    proxy = new FlakyProxy(await freePort(), port)
    await proxy.listen()
    broker = await startLocalKafka({ port, controllerPort: await freePort(), advertisedPort: proxy.port, log: (line) => console.log(`[flaky broker] ${line}`) })
    system = new System({ LOG_LEVEL: 'info', PAYMENT_SUCCESS_RATE: '0.8' }, { brokers: `127.0.0.1:${proxy.port}`, supervise: true })
    system.port = await freePort()
    await Promise.all(ALL_ROLES.map((role) => system.startRole(role)))
  }, 180_000)
  afterAll(async () => {
    await system?.stop()
    await proxy?.close()
    await broker?.stop()
  })

  it('every connection cut every 3 s and some slowed, under load: no effect twice, nothing lost, verify clean, no role exits', async () => {
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push(await post(system.port))
    await system.waitForFinals(ids)

    proxy.flaky(3_000)
    const started = Date.now()
    const placed: Promise<void>[] = []
    // 20/s through the api, whose own writes to Kafka go through the proxy too.
    const ticker = setInterval(() => placed.push(post(system.port).then((id) => void ids.push(id))), 50)
    await waitFor(() => Date.now() - started >= 30_000 && proxy.cuts >= 8, 'thirty seconds of cuts', 60_000, 500)
    clearInterval(ticker)
    await Promise.all(placed)
    proxy.steady()

    await system.waitForFinals(ids, 180_000)
    // No double charge or reservation, one final event each, and no message_id with two bodies: a
    // request cut after the broker wrote it and retried by the client left one record, or copies
    // that dedupe by id dropped.
    await verifyClean(system, ids.length)
    // Stronger than verify: no message was written twice at all. Every producer is idempotent (the
    // broker drops a retried batch it already has) or transactional (a cut transaction aborts).
    for (const topic of ['orderEvents', 'inventoryCommands', 'paymentCommands'] as const) {
      const counts = new Map<string, number>()
      for (const { message } of await system.read(topic)) if (message) counts.set(message.message_id, (counts.get(message.message_id) ?? 0) + 1)
      expect([...counts].filter(([, n]) => n > 1), topic).toEqual([])
      expect(counts.size, topic).toBeGreaterThan(0)
    }
    expect(system.unexpectedExits.map((e) => `${e.role} exited ${e.code}: ${e.tail.join(' | ')}`)).toEqual([])
    console.log(`flaky network: ${ids.length} orders, ${proxy.cuts} cuts, ${proxy.connections} connections through the proxy`)
  }, 400_000)
})
