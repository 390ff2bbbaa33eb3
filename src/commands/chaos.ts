import { randomUUID } from 'node:crypto'

import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { command, parseEnvelope, type Payload } from '../envelope.js'
import { openBus } from '../kafka/open-bus.js'
import { chaosTargets, CHAOS_COMMAND } from '../saga/derive.js'
import { commandTopicKey, type ParticipantRole } from '../saga/define.js'
import { topicNames, topicSpecs } from '../topics.js'

export interface ChaosResult {
  role: string
  applied: boolean
  fail?: number
  reject?: number
  reason?: string
}

export default class Chaos extends Command {
  static override summary = 'Make the next attempts at a participant fail (retryably) or be rejected (not retryably).'
  static override description =
    "The command travels on the role's own command topic, so it reaches the role wherever it runs; the role answers on sagactl.control and this command waits for that answer. Roles obey only when SAGA_ALLOW_CHAOS is true (the default under `sagactl dev`).\n\n--fail and --reject set their own count and leave the other as it was; a count no order used stays for the next orders. At each attempt of its step the role uses a reject count first, then a fail count. `--clear` with no role clears every participant of the saga."
  static override examples = [
    '<%= config.bin %> chaos payment --fail 2',
    '<%= config.bin %> chaos inventory --reject 1',
    '<%= config.bin %> chaos payment --clear',
    '<%= config.bin %> chaos --clear',
  ]
  static override enableJsonFlag = true
  static override args = { role: Args.string({ description: 'the participant; with --clear alone, every participant', required: false }) }
  static override flags = {
    ...connectionFlags,
    fail: Flags.integer({ description: 'the next N attempts fail retryably', min: 0 }),
    reject: Flags.integer({ description: 'the next N attempts fail non-retryably', min: 0 }),
    clear: Flags.boolean({ description: 'back to normal', exclusive: ['fail', 'reject'] }),
    timeout: Flags.integer({ description: 'seconds to wait for the role to acknowledge', default: 20, min: 1 }),
  }

  async run(): Promise<ChaosResult | ChaosResult[]> {
    const { args, flags } = await this.parse(Chaos)
    const saga = await sagaFrom(flags)
    const targets: string[] = chaosTargets(saga)
    if (args.role === undefined && !flags.clear) this.error(`name the participant, one of: ${targets.join(', ')}; only --clear may go without one`, { exit: 2 })
    if (args.role !== undefined && !targets.includes(args.role)) this.error(`Expected the participant to be one of: ${targets.join(', ')} (got "${args.role}")`, { exit: 2 })
    if (!flags.clear && flags.fail === undefined && flags.reject === undefined) this.error('say what to do: --fail N, --reject N or --clear', { exit: 2 })
    const roles = args.role === undefined ? targets : [args.role]
    const payload: Payload = flags.clear ? { clear: true } : { ...(flags.fail !== undefined ? { fail: flags.fail } : {}), ...(flags.reject !== undefined ? { reject: flags.reject } : {}) }
    const requests = new Map(roles.map((role) => [role, command(CHAOS_COMMAND, { order_id: `chaos-${role}`, saga_id: `chaos-${role}`, payload }, Date.now(), randomUUID())]))
    const config = configFrom(flags)
    const names = topicNames(config.topicPrefix, saga)
    const bus = openBus(config, 'sagactl-chaos')
    try {
      await bus.ensureTopics(topicSpecs(config.topicPrefix, saga))
      const results = new Map<string, ChaosResult>()
      let allAnswered: () => void = () => {}
      const answered = new Promise<void>((resolve) => (allAnswered = resolve))
      // Follow the control topic from its current end, taken before the commands go out, so no answer can be missed.
      const sub = await bus.tail({
        topic: names.control,
        fromOffsets: await bus.endOffsets(names.control),
        handler: (record) => {
          const parsed = parseEnvelope(record.value)
          if (!parsed.ok) return
          const role = roles.find((r) => requests.get(r)!.message_id === parsed.message.causation_id)
          if (!role) return
          const p = parsed.message.payload
          results.set(role, { role, applied: parsed.message.type === 'chaos.applied', ...(typeof p.fail === 'number' ? { fail: p.fail, reject: p.reject as number } : {}), ...(typeof p.reason === 'string' ? { reason: p.reason } : {}) })
          if (results.size === roles.length) allAnswered()
        },
      })
      await bus.publish(roles.map((role) => ({ topic: names[commandTopicKey(role as ParticipantRole)], key: requests.get(role)!.order_id, value: JSON.stringify(requests.get(role)) })))
      let timer: NodeJS.Timeout | undefined
      await Promise.race([answered, new Promise<void>((resolve) => (timer = setTimeout(resolve, flags.timeout * 1000)))])
      clearTimeout(timer)
      await sub.close()
      const silent = roles.filter((r) => !results.has(r))
      if (silent.length > 0) {
        const which = silent.join(' and ')
        this.error(`${which} did not acknowledge within ${flags.timeout} s; is \`sagactl start ${silent[0]}\` running? The command stays queued and applies when it starts.`, { exit: 1 })
      }
      const ordered = roles.map((r) => results.get(r)!)
      const refused = ordered.filter((r) => !r.applied)
      if (refused.length > 0) this.error(refused.map((r) => `${r.role} refused: ${r.reason ?? 'chaos not allowed'}`).join('; '), { exit: 1 })
      for (const r of ordered) this.log(`${r.role} acknowledged: next ${r.fail} attempt(s) fail retryably, next ${r.reject} are rejected`)
      return args.role === undefined ? ordered : ordered[0]!
    } finally {
      await bus.close()
    }
  }
}
