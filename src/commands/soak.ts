import fs from 'node:fs'

import { Command, Flags } from '@oclif/core'

import { connectionFlags, sagaFrom } from '../cli/flags.js'
import { renderSoakReport, soak, type SoakReport } from '../ops/soak.js'

export default class Soak extends Command {
  static override summary = 'Drive orders through everything while killing roles and the broker; then verify that every order ended exactly once, correctly.'
  static override description =
    'Starts its own Kafka broker and all five roles (default random success rates, short retry delays), submits orders at a fixed rate, SIGKILLs a random role every few seconds and restarts it, restarts the broker once half-way, injects duplicates of recent records and a few poison messages, waits for quiet and runs the same checks as `sagactl verify`. A kill is counted once the process was seen to exit (a role already down is not killed again: kills_skipped); an order the api did not take goes straight to Kafka and is counted by cause (via_kafka_by_cause). Exits 1 if anything is breached.'
  static override examples = ['<%= config.bin %> soak', '<%= config.bin %> soak --instances 2 --report docs/soak-report-instances.md', '<%= config.bin %> soak --orders 300 --kill-every 2 --report docs/soak-report.md']
  static override enableJsonFlag = true
  static override flags = {
    orders: Flags.integer({ description: 'orders to submit', default: 2000, min: 1 }),
    rate: Flags.integer({ description: 'orders per second', default: 50, min: 1 }),
    'kill-every': Flags.string({ description: 'seconds between SIGKILLs of a random role', default: '3' }),
    'duplicate-every': Flags.string({ description: 'seconds between injected duplicates', default: '0.5' }),
    poison: Flags.integer({ description: 'poison messages to inject', default: 5, min: 0 }),
    'broker-restart': Flags.boolean({ description: 'restart the broker once half-way', default: true, allowNo: true }),
    'quiet-timeout': Flags.integer({ description: 'seconds to wait for the system to go quiet at the end', default: 300, min: 1 }),
    instances: Flags.integer({ description: 'instances of each role; kills then move partitions and their state between instances', default: 1, min: 1, max: 4 }),
    keep: Flags.boolean({ description: "keep the broker's and the roles' data afterwards, for a post-mortem" }),
    logs: Flags.string({ description: "write each role process's log (level info) to DIR/<role>[@<instance>].log" }),
    report: Flags.string({ description: 'also write the report (markdown, with the JSON) to this file' }),
    saga: connectionFlags.saga,
  }

  async run(): Promise<SoakReport> {
    const { flags } = await this.parse(Soak)
    const saga = await sagaFrom(flags)
    const seconds = (name: string, raw: string): number => {
      const v = Number(raw)
      if (!Number.isFinite(v) || v <= 0) this.error(`--${name} must be a positive number of seconds, got "${raw}"`, { exit: 2 })
      return v * 1000
    }
    const report = await soak({
      saga,
      orders: flags.orders,
      rate: flags.rate,
      killEveryMs: seconds('kill-every', flags['kill-every']),
      duplicateEveryMs: seconds('duplicate-every', flags['duplicate-every']),
      poison: flags.poison,
      restartBroker: flags['broker-restart'],
      quietTimeoutMs: flags['quiet-timeout'] * 1000,
      instances: flags.instances,
      keep: flags.keep,
      ...(flags.logs ? { logDir: flags.logs } : {}),
      log: (line) => process.stderr.write(`soak │ ${line}\n`),
    })
    const text = renderSoakReport(report)
    this.log(text)
    if (flags.report) {
      const command = `sagactl soak ${process.argv.slice(3).filter((a) => !a.startsWith('--report') && !a.endsWith('.md')).join(' ')}`.trim()
      fs.writeFileSync(flags.report, `# Soak report\n\nCommand: \`${command}\` (${new Date().toISOString()})\n\n\`\`\`\n${text}\n\`\`\`\n\n<details><summary>JSON</summary>\n\n\`\`\`json\n${JSON.stringify(report, null, 2)}\n\`\`\`\n</details>\n`)
    }
    if (!report.ok) process.exitCode = 1
    return report
  }
}
