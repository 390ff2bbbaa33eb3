import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import { createLogger } from '../log.js'
import type { RoleName } from '../saga/define.js'
import { replay, type ReplayReport } from '../ops/replay.js'

export default class Replay extends Command {
  static override summary = "Re-feed order.events from an offset through the orchestrator's and notifier's handling."
  static override description =
    "Already-processed messages change nothing (each role's inbox). With the orchestrator's database deleted, a replay from offset 0 rebuilds every saga, pending retries included; start the orchestrator afterwards and in-flight sagas finish. Safe while the roles run; for a rebuild, stop the orchestrator first."
  static override examples = ['<%= config.bin %> replay --from-offset 0', '<%= config.bin %> replay --from-offset 120 --partition 3 --json']
  static override enableJsonFlag = true
  static override flags = {
    ...connectionFlags,
    'from-offset': Flags.integer({ description: 'first offset to re-feed (in every partition read)', required: true, min: 0 }),
    partition: Flags.integer({ description: 'only this partition of order.events (repeatable)', multiple: true, min: 0 }),
    role: Flags.string({ description: 'roles to re-feed', multiple: true, options: ['orchestrator', 'notifier', 'api'], default: ['orchestrator', 'notifier'] }),
  }

  async run(): Promise<ReplayReport> {
    const { flags } = await this.parse(Replay)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const bus = openBus(config, 'sagactl-replay')
    // Logs go to stderr: stdout carries the report (and --json).
    const log = createLogger('replay', { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' }, { stderr: true })
    let lastShown = 0
    try {
      const report = await replay(bus, config, log, {
        saga,
        fromOffset: BigInt(flags['from-offset']),
        ...(flags.partition ? { partitions: flags.partition } : {}),
        roles: flags.role as RoleName[],
        onProgress: (done, total) => {
          if (Date.now() - lastShown < 1000 && done !== total) return
          lastShown = Date.now()
          process.stderr.write(`replayed ${done}/${total} records\n`)
        },
      })
      this.log(`replayed ${report.records} records from offset ${report.from_offset}`)
      for (const r of report.roles) {
        this.log(`  ${r.role.padEnd(12)} processed ${r.processed}, already seen ${r.duplicate}, dead-lettered ${r.dead_lettered}, published ${r.published}, already on Kafka ${r.suppressed}`)
      }
      return report
    } finally {
      await bus.close()
    }
  }
}
