import { describe, expect, it } from 'vitest'

import { loadConfig } from '../src/config.js'

describe('configuration from the environment', () => {
  it('has the contract defaults', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({ brokers: ['127.0.0.1:9092'], port: 3000, retry: { minDelayMs: 5000, maxDelayMs: 10000, maxAttempts: 3 }, stepTimeoutMs: 30000, inventorySuccessRate: 0.8, paymentSuccessRate: 0.7, allowChaos: false })
    expect(c.dataDir.endsWith('.sagactl')).toBe(true)
    expect(c.orderLimits).toEqual({ maxAmount: 100_000_000, maxQty: 10_000 })
    expect(c.idempotencyTtlMs).toBe(24 * 3_600_000)
  })

  it('reads the order bounds, up to 2^53 - 1', () => {
    expect(loadConfig({ SAGA_MAX_AMOUNT: '9007199254740991', SAGA_MAX_QTY: '5' }).orderLimits).toEqual({ maxAmount: Number.MAX_SAFE_INTEGER, maxQty: 5 })
  })

  it.each([
    ['24h', 24 * 3_600_000],
    ['90m', 90 * 60_000],
    ['45s', 45_000],
    ['500ms', 500],
    ['7d', 7 * 86_400_000],
    ['1500', 1500],
  ])('reads SAGA_IDEMPOTENCY_TTL=%s as %i ms', (raw, ms) => {
    expect(loadConfig({ SAGA_IDEMPOTENCY_TTL: raw }).idempotencyTtlMs).toBe(ms)
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
    ['SAGA_MAX_AMOUNT', '0'],
    ['SAGA_MAX_AMOUNT', '1e308'],
    ['SAGA_MAX_AMOUNT', '9007199254740992'],
    ['SAGA_MAX_AMOUNT', '12.5'],
    ['SAGA_MAX_QTY', 'lots'],
    ['SAGA_IDEMPOTENCY_TTL', '0'],
    ['SAGA_IDEMPOTENCY_TTL', 'a day'],
    ['SAGA_IDEMPOTENCY_TTL', '2w'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name)
  })

  it('refuses a max retry delay below the min', () => {
    expect(() => loadConfig({ SAGA_RETRY_MIN_DELAY_MS: '10', SAGA_RETRY_MAX_DELAY_MS: '5' })).toThrow('SAGA_RETRY_MAX_DELAY_MS')
  })
})
