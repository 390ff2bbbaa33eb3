import { describe, expect, it } from 'vitest'

import { loadConfig } from '../src/config.js'

describe('configuration from the environment', () => {
  it('has the contract defaults', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({ brokers: ['127.0.0.1:9092'], port: 3000, retry: { minDelayMs: 5000, maxDelayMs: 10000, maxAttempts: 3 }, stepTimeoutMs: 30000, inventorySuccessRate: 0.8, paymentSuccessRate: 0.7, allowChaos: false })
    expect(c.dataDir.endsWith('.sagactl')).toBe(true)
  })

  it.each([
    ['SAGA_MAX_ATTEMPTS', 'three'],
    ['SAGA_MAX_ATTEMPTS', '0'],
    ['PAYMENT_SUCCESS_RATE', '1.5'],
    ['INVENTORY_SUCCESS_RATE', 'high'],
    ['SAGA_ALLOW_CHAOS', 'maybe'],
    ['PORT', '70000'],
    ['KAFKA_BROKERS', 'localhost'],
    ['SAGA_STEP_TIMEOUT_MS', '-1'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name)
  })

  it('refuses a max retry delay below the min', () => {
    expect(() => loadConfig({ SAGA_RETRY_MIN_DELAY_MS: '10', SAGA_RETRY_MAX_DELAY_MS: '5' })).toThrow('SAGA_RETRY_MAX_DELAY_MS')
  })
})
