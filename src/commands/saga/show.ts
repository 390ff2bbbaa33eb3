import { Args, Command } from '@oclif/core'

import { configFrom, connectionFlags } from '../../cli/flags.js'
import { loadSagaReport, renderSagaReport, SagaNotFound, type SagaReport } from '../../services/orchestrator/timeline.js'

export default class SagaShow extends Command {
  static override summary = "Show a saga's status and timeline: every event and command, with step, attempt and compensations."
  static override examples = ['<%= config.bin %> saga show 6f1c…', '<%= config.bin %> saga show 6f1c… --json']
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'an order_id or a saga_id', required: true }) }
  static override flags = { 'data-dir': connectionFlags['data-dir'] }

  async run(): Promise<SagaReport> {
    const { args, flags } = await this.parse(SagaShow)
    const config = configFrom(flags)
    try {
      const report = loadSagaReport(config.dataDir, args.id)
      this.log(renderSagaReport(report))
      return report
    } catch (error) {
      if (error instanceof SagaNotFound) this.error(error.message, { exit: 1 })
      throw error
    }
  }
}
