import { describe, expect, it } from 'vitest'

import { percentiles } from '../../../src/ops/bench/stats.js'

describe('percentiles', () => {
  it('given 1..100, each percentile is the nearest rank, whatever the input order', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentiles(values)).toEqual({ count: 100, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 })
  })

  it('given one value, every percentile is that value', () => {
    expect(percentiles([7.257])).toEqual({ count: 1, p50: 7.26, p90: 7.26, p99: 7.26, max: 7.26, mean: 7.26 })
  })

  it('given nothing, says so with a zero count rather than NaN', () => {
    expect(percentiles([])).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 })
  })
})
