import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../../cli/flags.js'
import { openBus } from '../../kafka/open-bus.js'
import { MAX_DEADLINE_MS, orderProblem, type Order } from '../../order-schema.js'
import { loadTracing } from '../../observe/tracing-switch.js'
import { createOrder } from '../../services/api/app.js'
import { topicNames, topicSpecs } from '../../topics.js'
import type { StateStore } from '../../runtime/role.js'
import { randomUUID } from 'node:crypto'

export interface CreatedOrder {
  order_id: string
  saga_id: string
  status: 'pending'
  via: 'api' | 'kafka'
}

function parseItem(raw: string): { sku: string; qty: number } {
  const match = /^([^:]+):(\d+)$/.exec(raw)
  if (!match || Number(match[2]) < 1) throw new Error(`--item must be SKU:QTY with QTY ≥ 1, got "${raw}"`)
  return { sku: match[1]!, qty: Number(match[2]) }
}

export default class OrderCreate extends Command {
  static override summary = 'Place an order; prints its order and saga ids.'
  static override examples = ['<%= config.bin %> order create --item book:2 --amount 1500', '<%= config.bin %> order create --deadline-ms 60000', '<%= config.bin %> order create --via kafka --json']
  static override enableJsonFlag = true
  static override flags = {
    ...connectionFlags,
    item: Flags.string({ description: 'an item as SKU:QTY (repeatable)', multiple: true, default: ['demo-sku:1'] }),
    amount: Flags.integer({ description: 'amount to charge, in minor units', min: 1, default: 999 }),
    user: Flags.string({ description: 'user id' }),
    'deadline-ms': Flags.integer({ description: "cancel the saga if it has not ended this many ms after it starts (the saga definition's deadlineMs bounds it)", min: 1, max: MAX_DEADLINE_MS }),
    via: Flags.string({ description: 'through the api role over HTTP, or straight onto order.events', options: ['api', 'kafka'], default: 'api' }),
    url: Flags.string({ description: 'api base URL (default http://127.0.0.1:$PORT)' }),
  }

  async run(): Promise<CreatedOrder> {
    const { flags } = await this.parse(OrderCreate)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    let items: Order['items']
    try {
      items = flags.item.map(parseItem)
    } catch (error) {
      this.error((error as Error).message, { exit: 2 })
    }
    const body: Order = { user_id: flags.user ?? null, items, amount: flags.amount, ...(flags['deadline-ms'] === undefined ? {} : { deadline_ms: flags['deadline-ms'] }) }
    // Straight onto Kafka no route checks it: refuse here what the orchestrator would dead-letter.
    const problem = orderProblem(config.orderLimits)(body, 'order')
    if (problem) this.error(problem, { exit: 2 })
    let created: CreatedOrder
    // With tracing on, the order's trace starts here and the api's span (or order.created) hangs below it.
    const tracing = await loadTracing('sagactl-cli')
    const span = tracing?.start('order create', undefined, { 'sagactl.via': flags.via })
    try {
      if (flags.via === 'api') {
        const url = `${flags.url ?? `http://127.0.0.1:${config.port}`}/orders`
        let response: Response
        try {
          response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...span?.headers }, body: JSON.stringify(body) })
        } catch (error) {
          this.error(`cannot reach the api at ${url} (${(error as Error).message}); is \`sagactl start api\` running? Or use --via kafka`, { exit: 1 })
        }
        const answer = (await response.json()) as { order_id: string; saga_id: string; message?: string }
        if (response.status !== 202) this.error(`the api refused the order: ${response.status} ${answer.message ?? ''}`, { exit: 1 })
        created = { order_id: answer.order_id, saga_id: answer.saga_id, status: 'pending', via: 'api' }
      } else {
        const bus = openBus(config, 'sagactl-cli')
        try {
          await bus.ensureTopics(topicSpecs(config.topicPrefix, saga))
          const noStore: StateStore = { get: () => undefined, put: () => {} }
          const { view, messages } = createOrder(body, noStore, { now: Date.now(), newId: randomUUID, random: Math.random })
          const names = topicNames(config.topicPrefix, saga)
          await bus.publish(messages.map((m) => ({ topic: names[m.topic], key: m.envelope.order_id, value: JSON.stringify(m.envelope), ...(span ? { headers: { ...span.headers } } : {}) })))
          created = { order_id: view.order_id, saga_id: view.saga_id, status: 'pending', via: 'kafka' }
        } finally {
          await bus.close()
        }
      }
      span?.end({ 'sagactl.order_id': created.order_id })
    } catch (error) {
      span?.end({}, error as Error)
      throw error
    } finally {
      await tracing?.shutdown().catch(() => undefined)
    }
    this.log(`order ${created.order_id} placed (saga ${created.saga_id}); follow it with: sagactl saga show ${created.order_id}`)
    return created
  }
}
