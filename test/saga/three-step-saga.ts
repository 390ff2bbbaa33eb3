import { defineSaga } from '../../src/saga/define.js'
import { inventory } from '../../src/order-saga/inventory.js'
import { payment } from '../../src/order-saga/payment.js'
import { shipping } from './steps/shipping.js'

/** reserve → charge → ship. The default export is what SAGA_DEFINITION_MODULE loads, once built. */
export const threeStepSaga = defineSaga({
  started: 'order.created',
  completed: 'order.completed',
  cancelled: 'order.cancelled',
  steps: [inventory, payment, shipping],
})

export default threeStepSaga
