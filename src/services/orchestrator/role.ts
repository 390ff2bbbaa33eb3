import type { Message } from '../../envelope.js'
import { orderProblem, type OrderLimits } from '../../order-schema.js'
import { tooOldToTrust } from '../../runtime/retention.js'
import type { DecideContext, Decision, RoleHandler, StateStore } from '../../runtime/role.js'
import { decide, isFinished, type RetryPolicy, type SagaState } from '../../saga/decide.js'
import type { Saga } from '../../saga/define.js'
import { definitionHash, versionName, versionsOf } from '../../saga/derive.js'

export const SAGA_SCOPE = 'saga'

/**
 * An order.created that breaks the order schema is dead-lettered whole, however it arrived: no
 * saga state, no command. `sagactl dlq replay` sends it back once the bounds allow it.
 *
 * With a retention (SAGA_RETENTION), an order.created older than it starts no saga: it may repeat
 * an order that finished and was forgotten, whose processed id is gone. A finished saga is
 * settled, so retention may forget it once idle.
 */
export function orchestratorRole(saga: Saga, policy: RetryPolicy, limits: OrderLimits, retentionMs?: number): RoleHandler {
  const orderProblemIn = orderProblem(limits)
  // Hashed once here, not per message: every input looks its saga's version up by hash.
  const byHash = new Map(versionsOf(saga).map((v) => [definitionHash(v), v] as const))
  const newest = versionsOf(saga).at(-1)!
  const newestHash = definitionHash(newest)
  return {
    name: 'orchestrator',
    consumes: ['orderEvents'],
    handle(message: Message, store: StateStore, ctx: DecideContext): Decision {
      if (message.type === saga.started) {
        const problem = orderProblemIn(message.payload, 'payload')
        if (problem) return { reject: `invalid order: ${problem}` }
      }
      const current = store.get<SagaState>(SAGA_SCOPE, message.order_id)
      if (message.type === saga.started && !current && tooOldToTrust(message, ctx.now, retentionMs)) {
        const fields = { order_id: message.order_id, message_id: message.message_id, occurred_at: message.occurred_at }
        return { notices: [{ level: 'warn', msg: 'order.created older than SAGA_RETENTION ignored: it may repeat an order already finished and forgotten', fields }] }
      }
      // A saga ends under the version it started under; a new one starts on the version its
      // order.created was stamped with (the api's newest), or on the newest.
      const recorded = current?.version
      const hash = recorded ? recorded.hash : message.saga_definition !== undefined && byHash.has(message.saga_definition) ? message.saga_definition : newestHash
      const version = byHash.get(hash)
      if (!version) {
        return { reject: `the saga of order ${message.order_id} started under version ${recorded!.name} (${recorded!.hash}), which this orchestrator does not run: deploy that version with the others (--saga) until \`saga list --version ${recorded!.name}\` shows none running` }
      }
      const d = decide(version, policy, current, message, ctx)
      if (d.state) {
        if (!d.state.version) d.state.version = { name: versionName(version), hash }
        store.put(SAGA_SCOPE, message.order_id, d.state)
      }
      return { ...d, messages: d.messages.map((m) => ({ ...m, envelope: { ...m.envelope, saga_definition: hash } })) }
    },
    settled: (scope, value) => scope !== SAGA_SCOPE || isFinished(value as SagaState),
  }
}
