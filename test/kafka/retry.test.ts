import { describe, expect, it } from 'vitest'

import { retriesWithin, backoffDelay } from '../../src/kafka/retry.js'

describe('retrying a consumer request in place', () => {
  it('given successive attempts, then the wait doubles from 250 ms and stays at 2 s', () => {
    expect([1, 2, 3, 4, 5, 9].map(backoffDelay)).toEqual([250, 500, 1000, 2000, 2000, 2000])
  })

  it('given a window, then the retries fill it and one fewer would not', () => {
    for (const window of [1, 300, 8_000, 30_000]) {
      const retries = retriesWithin(window)
      const waited = (n: number): number => Array.from({ length: n }, (_, i) => backoffDelay(i + 1)).reduce((a, b) => a + b, 0)
      expect(waited(retries)).toBeGreaterThanOrEqual(window)
      expect(waited(retries - 1)).toBeLessThan(window)
    }
    // 250 + 500 + 1,000, then 2 s at a time: 15 more reach 31.75 s.
    expect(retriesWithin(30_000)).toBe(18)
  })
})
