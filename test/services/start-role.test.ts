import { describe, expect, it } from 'vitest'

import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/config-env.js'
import { roleChangelog, roleHandler, startedFields } from '../../src/services/start-role.js'
import { threeStepSaga } from '../saga/three-step-saga.js'
import { orderSaga } from '../../src/order-saga/saga.js'

const config = loadConfig({ SAGA_TOPIC_PREFIX: 'p.' })

describe('a participant role for any step of the saga', () => {
  it('given the three-step saga, then `shipping` is a participant on its own topic with its own changelog', () => {
    const role = roleHandler('shipping', config, threeStepSaga)
    expect(role).toMatchObject({ name: 'shipping', consumes: ['shippingCommands'] })
    expect(roleChangelog(config, 'shipping', threeStepSaga)).toBe('p.sagactl.shipping.changelog')
  })

  it('given the order saga, then there is no shipping role to start', () => {
    expect(() => roleHandler('shipping', config, orderSaga)).toThrow('the saga has no participant "shipping"')
    expect(roleChangelog(config, 'shipping', orderSaga)).toBeUndefined()
  })

  it('given a success rate out of range, then the variable the step module names is refused', () => {
    expect(() => loadConfig({ SHIPPING_SUCCESS_RATE: '2' })).toThrow(ConfigError)
    expect(() => loadConfig({ SHIPPING_SUCCESS_RATE: '2' })).toThrow(/SHIPPING_SUCCESS_RATE/)
  })
})

describe("a role's start line", () => {
  const at = { data: '/tmp/d/inventory.db' }

  it('given a participant bridged by its own variable, then the line names the URL it calls', () => {
    const fields = startedFields('inventory', orderSaga, loadConfig({ SAGA_HTTP_URL_INVENTORY: 'http://stock:8000' }), at)
    expect(fields).toMatchObject({ bridges: 'http://stock:8000', data: at.data })
  })

  it('given every participant bridged by SAGA_HTTP_URL, then the line names that URL', () => {
    const fields = startedFields('payment', orderSaga, loadConfig({ SAGA_HTTP_URL: 'http://svc:9000' }), at)
    expect(fields).toMatchObject({ bridges: 'http://svc:9000' })
  })

  it('given a participant that runs its own code, or a role that is no participant, then no URL is named and the role is left to the logger', () => {
    const bridgedConfig = loadConfig({ SAGA_HTTP_URL: 'http://svc:9000' })
    expect(startedFields('inventory', orderSaga, loadConfig({}), at)).not.toHaveProperty('bridges')
    expect(startedFields('orchestrator', orderSaga, bridgedConfig, at)).not.toHaveProperty('bridges')
    expect(startedFields('inventory', orderSaga, loadConfig({}), at)).not.toHaveProperty('role')
  })
})
