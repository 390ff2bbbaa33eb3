import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom, sagaModule, unknownRoleMessage } from '../cli/flags.js'
import { explainKafkaError } from '../kafka/explain.js'
import { createLogger } from '../log.js'
import type { RoleName } from '../saga/define.js'
import { roleNames } from '../saga/derive.js'
import { httpUrl } from '../config.js'
import { bridgeVariable, startRole } from '../services/start-role.js'
import { onStopSignal } from '../cli/stop-signal.js'

export default class Start extends Command {
  static override summary = 'Run one role of the saga until SIGINT/SIGTERM.'
  static override description =
    'Run as many instances of a role as you like, on one host or many: they share the work by partitions, and each partition\'s state moves with it (restored from the role\'s changelog topic). Each instance keeps a local cache of its inbox, state and outbox in a SQLite file under SAGA_DATA_DIR (under SAGA_DATA_DIR/<instance-id> with --instance-id); the file can be deleted at any time. On SIGINT/SIGTERM it stops consuming, flushes its outbox and exits 0.'
  static override examples = [
    '<%= config.bin %> start orchestrator',
    '<%= config.bin %> start orchestrator --instance-id orch-2',
    'PORT=8080 <%= config.bin %> start api --instance-id api-2',
    '<%= config.bin %> start participant --step reserve_inventory --url http://inventory:8000',
  ]
  static override args = { role: Args.string({ description: 'the role to run: api, orchestrator, notifier, one of the saga’s participants (inventory, payment), or `participant` with --step', required: true }) }
  static override flags = {
    ...connectionFlags,
    port: Flags.integer({ description: 'HTTP port of the api role (overrides PORT)', min: 0, max: 65535 }),
    'metrics-port': Flags.integer({ description: 'serve GET /metrics (Prometheus) on this port (overrides SAGA_METRICS_PORT); the api serves it on its HTTP port instead', min: 0, max: 65535 }),
    'instance-id': Flags.string({ description: 'names this instance (overrides SAGA_INSTANCE_ID): its own data directory, and static group membership so a quick restart keeps its partitions' }),
    url: Flags.string({ description: 'bridge an existing HTTP service as the participant: each command is POSTed to <url>/<command type> with an Idempotency-Key (overrides SAGA_HTTP_URL)' }),
    step: Flags.string({ description: 'with the role `participant`: the step (its name, command or role) whose participant to run' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Start)
    const saga = await sagaFrom(flags)
    const roles = roleNames(saga)
    let name = args.role
    if (name === 'participant') {
      const step = saga.steps.find((s) => flags.step !== undefined && [s.name, s.command.type, s.role].includes(flags.step))
      if (!step) {
        const got = flags.step ? ` (got "${flags.step}")` : ''
        const hint = flags.step && sagaModule() === undefined ? "; those are the default saga's (the order saga's) steps: if it is a step of your saga, pass --saga <module>" : ''
        this.error(`\`start participant\` needs --step, one of: ${saga.steps.map((s) => s.name).join(', ')}${got}${hint}`, { exit: 2 })
      }
      if (!flags.url && !process.env.SAGA_HTTP_URL && !process.env[bridgeVariable(step.role)]) this.error(`\`start participant\` needs --url (or ${bridgeVariable(step.role)}, SAGA_HTTP_URL): the base URL of the service that does the step`, { exit: 2 })
      name = step.role
    }
    if (!roles.includes(name as RoleName)) this.error(unknownRoleMessage(name, roles, sagaModule()), { exit: 2 })
    const role = name as RoleName
    // SAGA_HTTP_URL_<ROLE> is checked with the rest of the configuration, below.
    try {
      if (flags.url) httpUrl('--url', flags.url)
    } catch (error) {
      this.error((error as Error).message, { exit: 2 })
    }
    if (flags.url && !saga.steps.some((s) => s.role === role)) this.error(`--url bridges a participant; ${role} is not one`, { exit: 2 })
    // The flag wins over the variables: it names the service for this role.
    if (flags.url) process.env[bridgeVariable(role)] = flags.url
    const config = configFrom(flags)
    const log = createLogger(role)
    const running = await startRole(role, saga, config, log, (error) => {
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
      onStopSignal(shutdown)
    })
    process.exit(0)
  }
}
