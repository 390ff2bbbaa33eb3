import { Command } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../../cli/flags.js'
import { openBus } from '../../kafka/open-bus.js'
import { listDeadLetters, type DeadLetter } from '../../ops/dead-letters.js'
import { topicNames } from '../../topics.js'

export default class DlqList extends Command {
  static override summary = 'List the messages on the dead-letter topic, with role, source and reason.'
  static override examples = ['<%= config.bin %> dlq list', '<%= config.bin %> dlq list --json']
  static override enableJsonFlag = true
  static override flags = { ...connectionFlags }

  async run(): Promise<DeadLetter[]> {
    const { flags } = await this.parse(DlqList)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const bus = openBus(config, 'sagactl-dlq')
    try {
      const letters = await listDeadLetters(bus, topicNames(config.topicPrefix, saga))
      if (letters.length === 0) this.log('the dead-letter topic is empty')
      for (const l of letters) {
        const preview = Buffer.from(l.value_base64 ?? '', 'base64').toString('utf8').replace(/\s+/g, ' ').slice(0, 80)
        this.log(`${l.dead_letter_id}  ${l.dead_lettered_at}  ${l.role.padEnd(12)} ${l.source.topic}[${l.source.partition}]@${l.source.offset}${l.replayed_at ? '  (replayed)' : ''}`)
        this.log(`    reason: ${l.reason}`)
        this.log(`    value:  ${preview}`)
      }
      return letters
    } finally {
      await bus.close()
    }
  }
}
