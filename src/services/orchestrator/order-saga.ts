import { defineSaga } from '../../saga/define.js'
import { inventory } from '../../saga/steps/inventory.js'
import { payment } from '../../saga/steps/payment.js'

/**
 * The order saga, as the user described it: reserve the goods, then charge; if anything fails
 * for good, undo what was done, newest first. Retry policy comes from configuration. Each step,
 * with its compensation, is one module under src/saga/steps.
 */
export const orderSaga = defineSaga({
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [inventory, payment],
})
