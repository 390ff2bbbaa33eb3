import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../../cli/flags.js'
import { parseDuration } from '../../config-env.js'
import { openBus } from '../../kafka/open-bus.js'
import { CancelNotDone, publishCancels, requestSagaCancel, type CancelResult } from '../../services/orchestrator/cancel.js'
import { listSagas, NoChangelog, renderSagaList, type SagaSummary } from '../../services/orchestrator/saga-list.js'
import { SagaNotFound } from '../../services/orchestrator/timeline.js'
import { changelogTopic, topicNames } from '../../topics.js'

/** The statuses a cancel can still change. */
const CANCELLABLE = ['running', 'waiting_retry'] as const

export interface BulkCancelResult {
  dry_run: boolean
  /** The sagas selected (only those a cancel can change: running or waiting for a retry). */
  sagas: SagaSummary[]
  /** The message_id of each saga.cancel-requested published, in the order of `sagas`; empty on a dry run. */
  request_ids: string[]
}

export default class SagaCancel extends Command {
  static override summary = 'Cancel a saga from outside: stop retrying, undo what was done (the step in flight too), and end it cancelled.'
  static override description =
    "Publishes saga.cancel-requested on order.events, keyed by the order, and waits for the orchestrator's answer, as `saga retry` does. The orchestrator takes it in log order: it stops retrying, undoes the step in flight and every done step, newest first, and publishes order.cancelled with the reason \"cancelled by request: <reason>\". A saga that already ended is not cancelled (exit 1, nothing published); nor is one already compensating (exit 1, the orchestrator's reason). Without an id, cancels every running or waiting saga that --status and --older-than select, without waiting for each answer; --dry-run lists them and publishes nothing."
  static override examples = [
    '<%= config.bin %> saga cancel 6f1c… --reason "customer asked"',
    '<%= config.bin %> saga cancel 6f1c… --json',
    '<%= config.bin %> saga cancel --status waiting_retry --older-than 10m --dry-run',
    '<%= config.bin %> saga cancel --status waiting_retry --older-than 10m --reason "payment provider down"',
  ]
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'an order_id or a saga_id; without it, the sagas --status and --older-than select' }) }
  static override flags = {
    brokers: connectionFlags.brokers,
    saga: connectionFlags.saga,
    reason: Flags.string({ description: 'why; order.cancelled says "cancelled by request: <reason>"', default: '' }),
    status: Flags.string({ description: 'bulk: only sagas in this status (repeat it, or separate with commas)', options: [...CANCELLABLE], multiple: true, delimiter: ',' }),
    'older-than': Flags.string({ description: 'bulk: only sagas started at least this long ago: 5m, 2h, 30s, 500ms, 7d' }),
    'dry-run': Flags.boolean({ description: 'bulk: list the sagas that would be cancelled, publish nothing', default: false }),
    wait: Flags.boolean({ description: "wait for the orchestrator's answer (--no-wait: publish the request and return)", default: true, allowNo: true }),
    timeout: Flags.integer({ description: "seconds to wait for the orchestrator's answer", default: 30, min: 1 }),
  }

  async run(): Promise<CancelResult | BulkCancelResult> {
    const { args, flags } = await this.parse(SagaCancel)
    const bulk = flags.status !== undefined || flags['older-than'] !== undefined || flags['dry-run']
    if (args.id && bulk) this.error('give an order id, or --status/--older-than/--dry-run to select sagas, not both', { exit: 2 })
    if (!args.id && !bulk) this.error('give an order id, or select sagas with --status and/or --older-than (try --dry-run first)', { exit: 2 })
    const olderThanMs = flags['older-than'] === undefined ? undefined : parseDuration(flags['older-than'])
    if (olderThanMs === undefined && flags['older-than'] !== undefined) this.error(`--older-than must be a duration such as 5m, 2h, 30s or 500ms, got "${flags['older-than']}"`, { exit: 2 })
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const topics = topicNames(config.topicPrefix, saga)
    const changelog = changelogTopic(config.topicPrefix, 'orchestrator')
    const bus = openBus(config, 'sagactl-cancel')
    try {
      if (!args.id) {
        const statuses = flags.status && flags.status.length > 0 ? flags.status : [...CANCELLABLE]
        const { sagas } = await listSagas(bus, changelog, { statuses, olderThanMs }, Date.now())
        const requestIds = flags['dry-run'] ? [] : await publishCancels(bus, topics, sagas, flags.reason, 'sagactl saga cancel')
        this.log(renderSagaList({ matched: sagas.length, sagas }))
        this.log(flags['dry-run'] ? `dry run: ${sagas.length} saga(s) would be cancelled; nothing published` : `${sagas.length} cancel request(s) published; \`sagactl saga list\` shows them compensating`)
        return { dry_run: flags['dry-run'], sagas, request_ids: requestIds }
      }
      const result = await requestSagaCancel(bus, topics, changelog, args.id, { saga, reason: flags.reason, requestedBy: 'sagactl saga cancel', wait: flags.wait, timeoutMs: flags.timeout * 1000 })
      this.log(
        result.outcome === 'cancelling'
          ? `order ${result.order_id}: ${result.status}, undoing ${result.step} first; it ends cancelled (${result.reason})`
          : `order ${result.order_id}: cancel requested (${result.request_id}); \`sagactl saga show ${result.order_id}\` shows when it is taken`,
      )
      return result
    } catch (error) {
      if (error instanceof SagaNotFound || error instanceof CancelNotDone || error instanceof NoChangelog) this.error(error.message, { exit: 1 })
      throw error
    } finally {
      await bus.close()
    }
  }
}
