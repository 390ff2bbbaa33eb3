import { Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import type { RoleName } from '../saga/define.js'
import { roleNames } from '../saga/derive.js'
import { gc, renderGcReport, type GcReport } from '../ops/gc.js'

export default class Gc extends Command {
  static override summary = "Prune now what SAGA_RETENTION allows from the roles' SQLite files (finished orders, processed ids, sent outbox rows)."
  static override description =
    "The roles do this themselves in the background; gc is for doing it now, or on the files of stopped roles. It applies the same rule: an order is forgotten whole (state, processed ids) once it has no timer, is finished and nothing touched it for SAGA_RETENTION. For a role with a changelog it first writes a tombstone per changelog key, so a restore does not bring the order back. Safe while the roles run (SQLite waits for their writes); run it where the role runs, since a file an instance kept after its partitions moved may be out of date. --dry-run reads only and needs no broker."
  static override examples = ['<%= config.bin %> gc --dry-run', '<%= config.bin %> gc --role orchestrator --json', 'SAGA_RETENTION=24h <%= config.bin %> gc']
  static override enableJsonFlag = true
  static override flags = {
    ...connectionFlags,
    role: Flags.string({ description: 'only this role (repeatable); default: every role file found in SAGA_DATA_DIR and its instance directories', multiple: true }),
    'dry-run': Flags.boolean({ description: 'count what would be pruned; change nothing', default: false }),
  }

  async run(): Promise<GcReport> {
    const { flags } = await this.parse(Gc)
    const saga = await sagaFrom(flags)
    const roles: string[] = roleNames(saga)
    const unknown = (flags.role ?? []).filter((r) => !roles.includes(r))
    if (unknown.length > 0) this.error(`Expected --role to be one of: ${roles.join(', ')} (got "${unknown.join('", "')}")`, { exit: 2 })
    const config = configFrom(flags)
    const report = await gc(config, saga, { ...(flags.role ? { roles: flags.role as RoleName[] } : {}), dryRun: flags['dry-run'], bus: () => openBus(config, 'sagactl-gc') })
    this.log(renderGcReport(report))
    return report
  }
}
