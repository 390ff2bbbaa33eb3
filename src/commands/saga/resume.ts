import { Args, Command, Flags } from '@oclif/core'

import { askAboutSaga, sagaRequestFlags } from '../../cli/saga-request.js'
import { describeResume, requestSagaResume, type ResumeResult } from '../../services/orchestrator/pause.js'

export default class SagaResume extends Command {
  static override summary = 'Carry a paused saga on from where it stands.'
  static override description =
    "Publishes saga.resume-requested on order.events, keyed by the order, and waits for the orchestrator's answer. A reply recorded while paused is acted on now; a retry or a step timeout that fell due while paused fires at once. A saga that already ended exits 1 and nothing is published; one that is not paused exits 1 with the orchestrator's reason. (A stuck saga is resumed by `saga retry`.)"
  static override examples = ['<%= config.bin %> saga resume 6f1c…', '<%= config.bin %> saga resume 6f1c… --json', '<%= config.bin %> saga resume 6f1c… --no-wait']
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'an order_id or a saga_id', required: true }) }
  static override flags = {
    ...sagaRequestFlags,
    reason: Flags.string({ description: 'why; `saga show` shows it with who resumed the saga and when', default: '' }),
  }

  async run(): Promise<ResumeResult> {
    const { args, flags } = await this.parse(SagaResume)
    const result = await askAboutSaga(flags, 'saga resume', (c) => requestSagaResume(c.bus, c.topics, c.changelog, args.id, { ...c, reason: flags.reason }))
    this.log(describeResume(result))
    return result
  }
}
