import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import { listSagas } from '../services/orchestrator/saga-list.js'
import { loadSagaReport } from '../services/orchestrator/timeline.js'
import { buildUiApp } from '../ops/ui/app.js'
import { changelogTopic, topicNames } from '../topics.js'
import { onStopSignal } from '../cli/stop-signal.js'

export default class Ui extends Command {
  static override summary = 'Serve a read-only page of the sagas: the list, and each saga as swimlanes in time, live while it runs.'
  static override description = "Reads the broker only, as saga list and saga show do. Bound to 127.0.0.1 unless --host says otherwise: the page shows every order's ids and reasons."
  static override examples = ['<%= config.bin %> ui', '<%= config.bin %> ui --port 8080', '<%= config.bin %> ui --host 0.0.0.0']
  static override flags = {
    port: Flags.integer({ description: 'HTTP port', default: 3900, min: 0, max: 65535 }),
    host: Flags.string({ description: 'address to bind', default: '127.0.0.1' }),
    brokers: connectionFlags.brokers,
    saga: connectionFlags.saga,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Ui)
    const saga = await sagaFrom(flags)
    const config = configFrom({ brokers: flags.brokers })
    const bus = openBus(config, 'sagactl-ui')
    const changelog = changelogTopic(config.topicPrefix, 'orchestrator')
    const app = buildUiApp({
      listSagas: (filter) => listSagas(bus, changelog, filter, Date.now()),
      loadSaga: (id) => loadSagaReport(bus, topicNames(config.topicPrefix, saga), changelog, id, saga),
      saga,
      now: Date.now,
    })
    const url = await app.listen({ port: flags.port, host: flags.host })
    this.log(`sagactl ui listening at ${url}`)
    await new Promise<void>((resolve) => onStopSignal(() => resolve()))
    await app.close()
    await bus.close()
  }
}
