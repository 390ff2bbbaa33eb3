import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags } from '../cli/flags.js'
import { explainKafkaError } from '../kafka/explain.js'
import { createLogger } from '../log.js'
import { ROLE_NAMES, type RoleName } from '../runtime/role.js'
import { startRole } from '../services/start-role.js'

export default class Start extends Command {
  static override summary = 'Run one role of the saga until SIGINT/SIGTERM.'
  static override description = 'Each role keeps its inbox, state and outbox in its own SQLite file under SAGA_DATA_DIR. On SIGINT/SIGTERM it stops consuming, flushes its outbox and exits 0.'
  static override examples = ['<%= config.bin %> start orchestrator', 'PORT=8080 <%= config.bin %> start api']
  static override args = { role: Args.string({ description: 'the role to run', options: [...ROLE_NAMES], required: true }) }
  static override flags = { ...connectionFlags, port: Flags.integer({ description: 'HTTP port of the api role (overrides PORT)', min: 0, max: 65535 }) }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Start)
    const role = args.role as RoleName
    const config = configFrom(flags)
    const log = createLogger(role)
    const running = await startRole(role, config, log, (error) => {
      log.fatal({ err: explainKafkaError(error, config.kafka) }, `${role} cannot go on; exiting so a supervisor restarts it`)
      process.exit(1)
    })
    await new Promise<void>((resolve) => {
      const shutdown = (signal: string): void => {
        log.info({ signal }, `${role} stopping`)
        const force = setTimeout(() => {
          log.error('clean stop took over 15 s; exiting')
          process.exit(1)
        }, 15_000)
        force.unref()
        running.stop().then(resolve, (error: Error) => {
          log.error({ err: error }, 'error while stopping')
          process.exit(1)
        })
      }
      process.once('SIGINT', shutdown)
      process.once('SIGTERM', shutdown)
    })
    process.exit(0)
  }
}
