import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, explainMissingTopic, sagaFrom } from '../../cli/flags.js'
import { openBus } from '../../kafka/open-bus.js'
import { loadSagaReport, renderSagaReport, SagaNotFound, type SagaReport } from '../../services/orchestrator/timeline.js'
import { changelogTopic, topicNames } from '../../topics.js'

export default class SagaShow extends Command {
  static override summary = "Show a saga's status and timeline: every event and command, with step, attempt and compensations."
  static override description = "Reads the broker only (the orchestrator's changelog and the saga topics), so it answers the same from any host, whichever instance runs the saga."
  static override examples = ['<%= config.bin %> saga show 6f1c…', '<%= config.bin %> saga show 6f1c… --json']
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'an order_id or a saga_id', required: true }) }
  static override flags = {
    brokers: connectionFlags.brokers,
    saga: connectionFlags.saga,
    'data-dir': Flags.string({ description: connectionFlags['data-dir'].description ?? '', deprecated: { message: 'saga show reads the broker now; --data-dir is ignored' } }),
  }

  async run(): Promise<SagaReport> {
    const { args, flags } = await this.parse(SagaShow)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const bus = openBus(config, 'sagactl-show')
    try {
      const report = await loadSagaReport(bus, topicNames(config.topicPrefix, saga), changelogTopic(config.topicPrefix, 'orchestrator'), args.id, saga)
      this.log(renderSagaReport(report, saga))
      return report
    } catch (error) {
      if (error instanceof SagaNotFound) this.error(error.message, { exit: 1 })
      throw explainMissingTopic(error, config, saga)
    } finally {
      await bus.close()
    }
  }
}
