import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, explainMissingTopic, sagaFrom } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import { listDeadLetters } from '../ops/dead-letters.js'
import { deadLetteredIds, renderVerifyReport, verifyMessages, type VerifyReport } from '../ops/verify.js'
import { waitForQuiet } from '../ops/quiet.js'
import { groupInputs } from '../services/start-role.js'
import { readSagaMessages, sagaTopics } from '../services/orchestrator/saga-log.js'
import { topicNames } from '../topics.js'

export default class Verify extends Command {
  static override summary = 'Check the saga invariants over order.events and the command topics; exits 1 on any breach, or when no order is found.'
  static override description =
    'Every order has exactly one final event; no saga is left unfinished (one whose compensation ran out of attempts is reported as stuck, with the `sagactl saga retry` that resumes it); at most one reservation and one charge per order; no charge without a reservation; completed ⇒ one reservation held and one net charge; cancelled ⇒ nothing held and no net charge; no compensation is applied twice; one message_id never carries two different messages. Each breach names its kind (e.g. double_charge) and its order. Finding no order at all also exits 1, since a wrong broker or topic prefix looks just like that, unless --allow-empty. Run it when the system is quiet (--wait-quiet waits for that).'
  static override examples = ['<%= config.bin %> verify', '<%= config.bin %> verify --wait-quiet 60 --json', '<%= config.bin %> verify --allow-empty']
  static override enableJsonFlag = true
  static override flags = {
    ...connectionFlags,
    'wait-quiet': Flags.integer({ description: 'first wait up to N seconds for the topics to stop growing and every role group to read up to their end', min: 0, default: 0 }),
    'allow-empty': Flags.boolean({ description: 'exit 0 when no order is found (otherwise that exits 1)', default: false }),
  }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(Verify)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const names = topicNames(config.topicPrefix, saga)
    const bus = openBus(config, 'sagactl-verify')
    try {
      // A saga waiting out a retry is silent for up to the longest delay: quiet means longer than that.
      if (flags['wait-quiet'] > 0 && !(await waitForQuiet(bus, sagaTopics(names, saga), flags['wait-quiet'] * 1000, config.retry.maxDelayMs + 3000, groupInputs(config.topicPrefix, saga)))) {
        this.warn(`the topics did not go quiet within ${flags['wait-quiet']} s (still growing, or a role behind its input); verifying what is there now`)
      }
      const report = verifyMessages(await readSagaMessages(bus, names, saga), deadLetteredIds(await listDeadLetters(bus, names)), { allowEmpty: flags['allow-empty'], saga })
      this.log(renderVerifyReport(report))
      if (!report.ok) process.exitCode = 1
      return report
    } catch (error) {
      throw explainMissingTopic(error, config, saga)
    } finally {
      await bus.close()
    }
  }
}
