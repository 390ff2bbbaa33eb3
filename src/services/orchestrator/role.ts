import type { Message } from '../../envelope.js'
import { orderProblem, type OrderLimits } from '../../order-schema.js'
import { tooOldToTrust } from '../../runtime/retention.js'
import type { DecideContext, Decision, RoleHandler, StateStore } from '../../runtime/role.js'
import { decide, isFinished, type RetryPolicy, type SagaDefinition, type SagaState } from '../../saga/decide.js'

export const SAGA_SCOPE = 'saga'

/**
 * An order.created that breaks the order schema is dead-lettered whole, however it arrived: no
 * saga state, no command. `sagactl dlq replay` sends it back once the bounds allow it.
 *
 * With a retention (SAGA_RETENTION), an order.created older than it starts no saga: it may repeat
 * an order that finished and was forgotten, whose processed id is gone. A finished saga is
 * settled, so retention may forget it once idle.
 */
export function orchestratorRole(saga: SagaDefinition, policy: RetryPolicy, limits: OrderLimits, retentionMs?: number): RoleHandler {
  const orderProblemIn = orderProblem(limits)
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
      const d = decide(saga, policy, current, message, ctx)
      if (d.state) store.put(SAGA_SCOPE, message.order_id, d.state)
      return d
    },
    settled: (scope, value) => scope !== SAGA_SCOPE || isFinished(value as SagaState),
  }
}
