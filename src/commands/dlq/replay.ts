import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../../cli/flags.js'
import { openBus } from '../../kafka/open-bus.js'
import { listDeadLetters, replayDeadLetters } from '../../ops/dead-letters.js'
import { topicNames } from '../../topics.js'

export default class DlqReplay extends Command {
  static override summary = 'Send dead letters back to their source topic, once their cause is fixed.'
  static override examples = ['<%= config.bin %> dlq replay 3d0c…', '<%= config.bin %> dlq replay --all']
  static override enableJsonFlag = true
  static override args = { id: Args.string({ description: 'a dead_letter_id from `dlq list`' }) }
  static override flags = {
    ...connectionFlags,
    all: Flags.boolean({ description: 'every dead letter not replayed yet' }),
    again: Flags.boolean({ description: 'with --all: include letters already replayed' }),
  }

  async run(): Promise<{ replayed: string[] }> {
    const { args, flags } = await this.parse(DlqReplay)
    const saga = await sagaFrom(flags)
    if (!args.id && !flags.all) this.error('name a dead_letter_id, or pass --all', { exit: 2 })
    const config = configFrom(flags)
    const topics = topicNames(config.topicPrefix, saga)
    const bus = openBus(config, 'sagactl-dlq')
    try {
      const letters = await listDeadLetters(bus, topics)
      const chosen = args.id ? letters.filter((l) => l.dead_letter_id === args.id) : letters.filter((l) => flags.again || !l.replayed_at)
      if (args.id && chosen.length === 0) this.error(`no dead letter ${args.id}`, { exit: 1 })
      const sent = await replayDeadLetters(bus, topics, chosen)
      this.log(`sent ${sent.length} dead letter(s) back to their source topics`)
      return { replayed: sent.map((l) => l.dead_letter_id) }
    } finally {
      await bus.close()
    }
  }
}
