import { randomUUID } from 'node:crypto'

import { Args, Command, Flags } from '@oclif/core'

import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { command, parseEnvelope } from '../envelope.js'
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
    "The command travels on the role's own command topic, so it reaches the role wherever it runs; the role answers on sagactl.control and this command waits for that answer. Roles obey only when SAGA_ALLOW_CHAOS is true (the default under `sagactl dev`)."
  static override examples = ['<%= config.bin %> chaos payment --fail 2', '<%= config.bin %> chaos inventory --reject 1', '<%= config.bin %> chaos payment --clear']
  static override enableJsonFlag = true
  static override args = { role: Args.string({ description: 'the participant', required: true }) }
  static override flags = {
    ...connectionFlags,
    fail: Flags.integer({ description: 'the next N attempts fail retryably', min: 0 }),
    reject: Flags.integer({ description: 'the next N attempts fail non-retryably', min: 0 }),
    clear: Flags.boolean({ description: 'back to normal', exclusive: ['fail', 'reject'] }),
    timeout: Flags.integer({ description: 'seconds to wait for the role to acknowledge', default: 20, min: 1 }),
  }

  async run(): Promise<ChaosResult> {
    const { args, flags } = await this.parse(Chaos)
    const saga = await sagaFrom(flags)
    const targets: string[] = chaosTargets(saga)
    if (!targets.includes(args.role)) this.error(`Expected the participant to be one of: ${targets.join(', ')} (got "${args.role}")`, { exit: 2 })
    if (!flags.clear && flags.fail === undefined && flags.reject === undefined) this.error('say what to do: --fail N, --reject N or --clear', { exit: 2 })
    const config = configFrom(flags)
    const names = topicNames(config.topicPrefix, saga)
    const bus = openBus(config, 'sagactl-chaos')
    const request = command(CHAOS_COMMAND, { order_id: `chaos-${args.role}`, saga_id: `chaos-${args.role}`, payload: flags.clear ? { clear: true } : { ...(flags.fail !== undefined ? { fail: flags.fail } : {}), ...(flags.reject !== undefined ? { reject: flags.reject } : {}) } }, Date.now(), randomUUID())
    try {
      await bus.ensureTopics(topicSpecs(config.topicPrefix, saga))
      let answer: (r: ChaosResult) => void = () => {}
      const answered = new Promise<ChaosResult>((resolve) => (answer = resolve))
      // Follow the control topic from its current end, taken before the command goes out, so the answer cannot be missed.
      const sub = await bus.tail({
        topic: names.control,
        fromOffsets: await bus.endOffsets(names.control),
        handler: (record) => {
          const parsed = parseEnvelope(record.value)
          if (!parsed.ok || parsed.message.causation_id !== request.message_id) return
          const p = parsed.message.payload
          answer({ role: args.role, applied: parsed.message.type === 'chaos.applied', ...(typeof p.fail === 'number' ? { fail: p.fail, reject: p.reject as number } : {}), ...(typeof p.reason === 'string' ? { reason: p.reason } : {}) })
        },
      })
      const topic = names[commandTopicKey(args.role as ParticipantRole)]
      await bus.publish([{ topic, key: request.order_id, value: JSON.stringify(request) }])
      let timer: NodeJS.Timeout | undefined
      const result = await Promise.race([answered, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), flags.timeout * 1000)))])
      clearTimeout(timer)
      await sub.close()
      if (!result) {
        this.error(`${args.role} did not acknowledge within ${flags.timeout} s; is \`sagactl start ${args.role}\` running? The command stays queued and applies when it starts.`, { exit: 1 })
      }
      if (!result.applied) this.error(`${args.role} refused: ${result.reason ?? 'chaos not allowed'}`, { exit: 1 })
      this.log(`${args.role} acknowledged: next ${result.fail} attempt(s) fail retryably, next ${result.reject} are rejected`)
      return result
    } finally {
      await bus.close()
    }
  }
}
