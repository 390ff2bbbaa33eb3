import type { Message } from '../../envelope.js'
import { orderProblem, type OrderLimits } from '../../order-schema.js'
import type { DecideContext, Decision, RoleHandler, StateStore } from '../../runtime/role.js'
import { orderSaga } from './order-saga.js'
import { decide, type RetryPolicy, type SagaDefinition, type SagaState } from './saga.js'

export const SAGA_SCOPE = 'saga'

/**
 * An order.created that breaks the order schema is dead-lettered whole, however it arrived: no
 * saga state, no command. `sagactl dlq replay` sends it back once the bounds allow it.
 */
export function orchestratorRole(policy: RetryPolicy, limits: OrderLimits, saga: SagaDefinition = orderSaga): RoleHandler {
  const orderProblemIn = orderProblem(limits)
  return {
    name: 'orchestrator',
    consumes: ['orderEvents'],
    handle(message: Message, store: StateStore, ctx: DecideContext): Decision {
      if (message.type === saga.started) {
        const problem = orderProblemIn(message.payload, 'payload')
        if (problem) return { reject: `invalid order: ${problem}` }
      }
      const d = decide(saga, policy, store.get<SagaState>(SAGA_SCOPE, message.order_id), message, ctx)
      if (d.state) store.put(SAGA_SCOPE, message.order_id, d.state)
      return d
    },
  }
}
