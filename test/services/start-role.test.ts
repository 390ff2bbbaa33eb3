import { describe, expect, it } from 'vitest'

import { ConfigError, loadConfig } from '../../src/config.js'
import { roleChangelog, roleHandler } from '../../src/services/start-role.js'
import { threeStepSaga } from '../saga/three-step-saga.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const config = loadConfig({ SAGA_TOPIC_PREFIX: 'p.' })

describe('a participant role for any step of the saga', () => {
  it('given the three-step saga, then `shipping` is a participant on its own topic with its own changelog', () => {
    const role = roleHandler('shipping', config, threeStepSaga, {})
    expect(role).toMatchObject({ name: 'shipping', consumes: ['shippingCommands'] })
    expect(roleChangelog(config, 'shipping', threeStepSaga)).toBe('p.sagactl.shipping.changelog')
  })

  it('given the order saga, then there is no shipping role to start', () => {
    expect(() => roleHandler('shipping', config, orderSaga, {})).toThrow('the saga has no participant "shipping"')
    expect(roleChangelog(config, 'shipping', orderSaga)).toBeUndefined()
  })

  it('given a success rate out of range, then the variable the step module names is refused', () => {
    expect(() => roleHandler('shipping', config, threeStepSaga, { SHIPPING_SUCCESS_RATE: '2' })).toThrow(ConfigError)
    expect(() => roleHandler('shipping', config, threeStepSaga, { SHIPPING_SUCCESS_RATE: '2' })).toThrow(/SHIPPING_SUCCESS_RATE/)
  })
})
