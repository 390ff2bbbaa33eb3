import { defineSaga } from '../saga/define.js'
import { commandTypes, eventTypes } from '../saga/derive.js'
import { topicTable } from '../topics.js'
import { inventory } from './inventory.js'
import { payment } from './payment.js'

/**
 * The order saga, as the user described it: reserve the goods, then charge; if anything fails
 * for good, undo what was done, newest first. Retry policy comes from configuration. Each step,
 * with its compensation, is one module in this folder.
 */
export const orderSaga = defineSaga({
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [inventory, payment],
})

/** The order saga's message types, as the contract names them. */
export const EVENT_TYPES: readonly string[] = eventTypes(orderSaga)
export const COMMAND_TYPES: readonly string[] = commandTypes(orderSaga)
/** The order saga's topics: the contract's table. */
export const TOPICS = topicTable(orderSaga)
