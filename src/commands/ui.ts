import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import { listSagas } from '../services/orchestrator/saga-list.js'
import { loadSagaReport } from '../services/orchestrator/timeline.js'
import { buildUiApp } from '../ops/ui/app.js'
import { uiActions } from '../ops/ui/actions.js'
import { actionAccess } from '../ops/ui/access.js'
import { changelogTopic, topicNames } from '../topics.js'
import { onStopSignal } from '../cli/stop-signal.js'

export default class Ui extends Command {
  static override summary = 'Serve a page of the sagas: the list, each saga as swimlanes in time, live while it runs, and actions on them (cancel, pause, resume, retry a stuck saga, replay a dead letter).'
  static override description =
    "Reads the broker as saga list and saga show do. Each action asks for confirmation, calls what its CLI command calls (saga cancel, saga pause, saga resume, saga retry, dlq replay <id>) and shows the record it wrote and the orchestrator's answer. Bound to 127.0.0.1 unless --host says otherwise. On loopback, actions need no token unless SAGA_UI_TOKEN is set; bound anywhere else, they need SAGA_UI_TOKEN (typed into the page, sent in the x-sagactl-token header), and without it the page is read-only."
  static override examples = ['<%= config.bin %> ui', '<%= config.bin %> ui --port 8080', 'SAGA_UI_TOKEN=$(openssl rand -hex 16) <%= config.bin %> ui --host 0.0.0.0']
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
    const topics = topicNames(config.topicPrefix, saga)
    const app = buildUiApp({
      listSagas: (filter) => listSagas(bus, changelog, filter, Date.now()),
      loadSaga: (id) => loadSagaReport(bus, topics, changelog, id, saga),
      saga,
      now: Date.now,
      actions: uiActions(bus, topics, changelog, saga),
      host: flags.host,
      token: config.uiToken,
    })
    const url = await app.listen({ port: flags.port, host: flags.host })
    const access = actionAccess(flags.host, config.uiToken)
    this.log(`sagactl ui listening at ${url}`)
    this.log(access.enabled ? `actions on${access.token_required ? ', each with SAGA_UI_TOKEN' : ' (loopback, no token)'}` : `actions off: ${access.reason}`)
    await new Promise<void>((resolve) => onStopSignal(() => resolve()))
    await app.close()
    await bus.close()
  }
}
