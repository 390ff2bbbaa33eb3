import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom, sagaModule } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import { conform, renderConformReport, type ConformReport } from '../ops/conform.js'
import { httpDriver } from '../ops/conform-http.js'
import { kafkaDriver } from '../ops/conform-kafka.js'
import { topicNames, topicSpecs } from '../topics.js'

export default class Conform extends Command {
  static override summary = "Check a participant, in any language, against the participant's contract, rule by rule."
  static override description =
    "Over HTTP (--url: the service the bridge would call; each command is POSTed to <url>/<command type>, e.g. <url>/charge_payment and <url>/refund_payment for the payment step, so the service must serve those paths; a 404 there is no such route and fails every rule) or over Kafka (--topic: a participant consuming the step's command topic under --prefix). It sends commands of fresh orders of its own (order ids conform-…), never a live one, and checks: the same command twice gives one effect and the same reply; undo before act is confirmed without an effect; undo twice gives one undo; an act after its undo is not carried out; a retried act after a timeout gives one effect; a malformed command does not stop the service (over Kafka: it is dead-lettered); its replies follow the envelope. The report first says where each command was sent; a failed rule shows the status and the URL each answer came from. Exits 1 if any rule fails."
  static override examples = ['<%= config.bin %> conform charge_payment --url http://127.0.0.1:8102', 'SAGA_TOPIC_PREFIX=conform. <%= config.bin %> conform payment --topic --prefix conform.']
  static override enableJsonFlag = true
  static override args = { step: Args.string({ description: "the step whose participant to check: its name, command or role", required: true }) }
  static override flags = {
    ...connectionFlags,
    url: Flags.string({ description: 'check the HTTP service at this base URL: each command is POSTed to <url>/<command type> (as `start participant --url` does)', exactlyOne: ['url', 'topic'] }),
    topic: Flags.boolean({ description: "check the participant on the step's command topic (Kafka)", exactlyOne: ['url', 'topic'] }),
    prefix: Flags.string({ description: 'with --topic: the topic prefix the participant runs under; it must not be empty (a throwaway prefix, never the live one)' }),
    timeout: Flags.integer({ description: 'seconds to wait for each answer', default: 10, min: 1 }),
  }

  async run(): Promise<ConformReport> {
    const { args, flags } = await this.parse(Conform)
    const saga = await sagaFrom(flags)
    const step = saga.steps.find((s) => [s.name, s.command.type, s.role].includes(args.step))
    if (!step) {
      const hint = sagaModule() === undefined ? "; those are the default saga's (the order saga's) steps: if it is a step of your saga, pass --saga <module>" : ''
      this.error(`no step "${args.step}" in this saga; its steps: ${saga.steps.map((s) => `${s.name} (${s.role})`).join(', ')}${hint}`, { exit: 2 })
    }
    const config = configFrom(flags)
    let report: ConformReport
    if (flags.url) {
      report = await conform(httpDriver(flags.url, step, { declined: config.http.declined, ...(config.http.token ? { token: config.http.token } : {}), ...(config.http.caFile ? { caFile: config.http.caFile } : {}), timeoutMs: flags.timeout * 1000 }), step)
    } else {
      const prefix = flags.prefix ?? ''
      if (prefix === '') this.error('--topic needs --prefix: the throwaway topic prefix the participant runs under (conform never sends to the live topics)', { exit: 2 })
      const bus = openBus(config, 'sagactl-conform')
      try {
        await bus.ensureTopics(topicSpecs(prefix, saga))
        report = await conform(kafkaDriver(bus, topicNames(prefix, saga), step, { waitMs: flags.timeout * 1000, settleMs: 1000, role: step.role }), step)
      } finally {
        await bus.close()
      }
    }
    this.log(renderConformReport(report))
    if (!report.ok) process.exitCode = 1
    return report
  }
}
