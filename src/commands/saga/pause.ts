import { Args, Command, Flags } from '@oclif/core'

import { askAboutSaga, sagaRequestFlags } from '../../cli/saga-request.js'
import { describePause, requestSagaPause, type PauseResult } from '../../services/orchestrator/pause.js'

export default class SagaPause extends Command {
  static override summary = 'Hold a saga: no new command and no retry until `saga resume`; replies that arrive are recorded.'
  static override description =
    "Publishes saga.pause-requested on order.events, keyed by the order, and waits for the orchestrator's answer, as `saga cancel` does. Only a running saga or one waiting for a retry is held; its step's timer is put aside (a timeout that passes while paused is handled as one on resume), and the saga's deadline still runs. A compensation is not paused. A saga that already ended exits 1 and nothing is published; one the orchestrator would not hold (compensating, stuck, already paused) exits 1 with its reason. `saga cancel` works on a paused saga."
  static override examples = [
    '<%= config.bin %> saga pause 6f1c… --reason "address under review"',
    '<%= config.bin %> saga pause 6f1c… --json',
    '<%= config.bin %> saga list --status paused',
    '<%= config.bin %> saga resume 6f1c…',
  ]
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'an order_id or a saga_id', required: true }) }
  static override flags = {
    ...sagaRequestFlags,
    reason: Flags.string({ description: 'why; `saga show` shows it with who paused the saga and when', default: '' }),
  }

  async run(): Promise<PauseResult> {
    const { args, flags } = await this.parse(SagaPause)
    const result = await askAboutSaga(flags, 'saga pause', (c) => requestSagaPause(c.bus, c.topics, c.changelog, args.id, { ...c, reason: flags.reason }))
    this.log(describePause(result))
    return result
  }
}
