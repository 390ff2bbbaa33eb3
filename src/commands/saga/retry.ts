import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../../cli/flags.js'
import { openBus } from '../../kafka/open-bus.js'
import { requestRetry, RetryNotDone, type RetryResult } from '../../services/orchestrator/retry.js'
import { SagaNotFound } from '../../services/orchestrator/timeline.js'
import { changelogTopic, topicNames } from '../../topics.js'

export default class SagaRetry extends Command {
  static override summary = 'Resume a stuck saga: send its pending compensation again, with a fresh budget of attempts.'
  static override description =
    "A saga is stuck when a compensation was not confirmed within SAGA_MAX_COMPENSATION_ATTEMPTS attempts. This publishes saga.retry-requested on order.events, keyed by the order, and waits for the orchestrator's answer: the saga is compensating again, or why it was not retried. Only a stuck saga is retried; any other exits 1. Reads the saga's state from the broker, so it works from any host."
  static override examples = ['<%= config.bin %> saga retry 6f1c…', '<%= config.bin %> saga retry 6f1c… --json', '<%= config.bin %> saga retry 6f1c… --no-wait']
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'an order_id or a saga_id', required: true }) }
  static override flags = {
    brokers: connectionFlags.brokers,
    saga: connectionFlags.saga,
    wait: Flags.boolean({ description: "wait for the orchestrator's answer (--no-wait: publish the request and return)", default: true, allowNo: true }),
    timeout: Flags.integer({ description: "seconds to wait for the orchestrator's answer", default: 30, min: 1 }),
  }

  async run(): Promise<RetryResult> {
    const { args, flags } = await this.parse(SagaRetry)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const bus = openBus(config, 'sagactl-retry')
    try {
      const result = await requestRetry(bus, topicNames(config.topicPrefix, saga), changelogTopic(config.topicPrefix, 'orchestrator'), args.id, { saga, wait: flags.wait, timeoutMs: flags.timeout * 1000 })
      this.log(
        result.outcome === 'resumed'
          ? `order ${result.order_id}: ${result.status} again, ${result.step} attempt ${result.attempt}${result.attempts ? ` (up to ${result.attempts} attempts before it is stuck again)` : ''}`
          : `order ${result.order_id}: retry requested (${result.request_id}); \`sagactl saga show ${result.order_id}\` shows when it is taken`,
      )
      return result
    } catch (error) {
      if (error instanceof SagaNotFound || error instanceof RetryNotDone) this.error(error.message, { exit: 1 })
      throw error
    } finally {
      await bus.close()
    }
  }
}
