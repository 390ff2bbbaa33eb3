import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags } from '../../cli/flags.js'
import { parseDuration } from '../../config-env.js'
import { openBus } from '../../kafka/open-bus.js'
import { listSagas, NoChangelog, renderSagaList, SAGA_LIST_STATUSES, type SagaList } from '../../services/orchestrator/saga-list.js'
import { changelogTopic } from '../../topics.js'

export default class SagaListCommand extends Command {
  static override summary = 'List sagas by their current state, newest first.'
  static override description = "Reads the orchestrator's compacted changelog on the broker (read_committed; the latest record per saga wins), so it answers the same from any host."
  static override examples = [
    '<%= config.bin %> saga list',
    '<%= config.bin %> saga list --status waiting_retry --status compensating',
    '<%= config.bin %> saga list --status running,stuck --older-than 5m',
    '<%= config.bin %> saga list --version v1 --status running,waiting_retry,paused,compensating,stuck',
    '<%= config.bin %> saga list --limit 20 --json',
  ]
  static override enableJsonFlag = true
  static override flags = {
    status: Flags.string({ description: 'only sagas in this status (repeat it, or separate with commas)', options: [...SAGA_LIST_STATUSES], multiple: true, delimiter: ',' }),
    'older-than': Flags.string({ description: 'only sagas started at least this long ago: 5m, 2h, 30s, 500ms, 7d' }),
    limit: Flags.integer({ description: 'at most this many sagas', min: 1 }),
    version: Flags.string({ description: 'only sagas started under this version of the saga (its name or definition hash; repeat it, or separate with commas)', multiple: true, delimiter: ',' }),
    brokers: connectionFlags.brokers,
  }

  async run(): Promise<SagaList> {
    const { flags } = await this.parse(SagaListCommand)
    const olderThanMs = flags['older-than'] === undefined ? undefined : parseDuration(flags['older-than'])
    if (olderThanMs === undefined && flags['older-than'] !== undefined) this.error(`--older-than must be a duration such as 5m, 2h, 30s or 500ms, got "${flags['older-than']}"`, { exit: 2 })
    const config = configFrom(flags)
    const bus = openBus(config, 'sagactl-list')
    try {
      const list = await listSagas(bus, changelogTopic(config.topicPrefix, 'orchestrator'), { statuses: flags.status, olderThanMs, limit: flags.limit, ...(flags.version ? { versions: flags.version } : {}) }, Date.now())
      this.log(renderSagaList(list))
      return list
    } catch (error) {
      if (error instanceof NoChangelog) this.error(error.message, { exit: 1 })
      throw error
    } finally {
      await bus.close()
    }
  }
}
