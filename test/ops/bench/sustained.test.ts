import { describe, expect, it } from 'vitest'

import { slopePerSecond, sustainedVerdict, type SustainedInput } from '../../../src/ops/bench/sustained.js'

/** `count` orders sent evenly at `rate`/s from t=0, each finishing `latency(i)` ms after it was sent. */
function run(rate: number, count: number, latency: (i: number) => number, graceMs = 5000): SustainedInput {
  const sentAt = Array.from({ length: count }, (_, i) => (i * 1000) / rate)
  const finishedAt = sentAt.map((t, i) => t + latency(i))
  const last = sentAt.at(-1)!
  const inflight: [number, number][] = []
  for (let t = 0; t <= last; t += 250) inflight.push([t, sentAt.filter((s) => s <= t).length - finishedAt.filter((f) => f <= t).length])
  return { rate, sentAt, finishedAt, graceMs, inflight }
}

describe('the kept-up verdict', () => {
  it('given steady latency at the rate, the system kept up', () => {
    const v = sustainedVerdict(run(100, 3000, () => 200))
    expect(v).toMatchObject({ kept_up: true, reasons: [], finished_in_time: 3000, finished_in_time_ratio: 1 })
    expect(v.submit_rate).toBeCloseTo(100, 5)
    expect(Math.abs(v.inflight.slope_per_s)).toBeLessThan(v.inflight.growth_limit_per_s)
  })

  it('given a system that serves 90 of 100 orders a second, in flight grows and it did not keep up', () => {
    // Order i finishes when a 90/s server reaches it: a backlog that grows by 10 a second.
    const v = sustainedVerdict(run(100, 3000, (i) => (i * 1000) / 90 - (i * 1000) / 100 + 50))
    expect(v.kept_up).toBe(false)
    expect(v.inflight.slope_per_s).toBeGreaterThan(8)
    expect(v.reasons.join('\n')).toMatch(/in flight grew/)
  })

  it('given a backlog that drains within the grace period, the growth alone still says no', () => {
    // 96/s against 100/s for 60 s: 240 behind at the end, drained within the 5 s of grace.
    const v = sustainedVerdict(run(100, 6000, (i) => (i * 1000) / 96 - (i * 1000) / 100 + 20))
    expect(v.finished_in_time_ratio).toBe(1)
    expect(v.kept_up).toBe(false)
    expect(v.inflight.growth).toBeGreaterThan(100)
  })

  it('given one pause late in a short run that it recovers from, it kept up', () => {
    // 20/s for 10 s; orders sent between 8 and 9 s all finish at 9.1 s, as after a 1 s stall.
    const v = sustainedVerdict(run(20, 200, (i) => (i >= 160 && i < 180 ? 9100 - i * 50 : 60)))
    expect(v.inflight.max).toBeGreaterThanOrEqual(20)
    expect(v.kept_up).toBe(true)
  })

  it('given more than 1 % finishing after the grace period, it did not keep up', () => {
    const v = sustainedVerdict(run(50, 500, (i) => (i % 50 === 0 ? 20_000 : 100)))
    expect(v.finished_in_time).toBe(490)
    expect(v.kept_up).toBe(false)
    expect(v.reasons.join('\n')).toMatch(/490 of 500 sagas \(98 %\)/)
  })

  it('given sagas that never finish, they count against it', () => {
    const input = run(50, 500, () => 100)
    const v = sustainedVerdict({ ...input, finishedAt: input.finishedAt.slice(0, 480) })
    expect(v.finished_in_time_ratio).toBe(0.96)
    expect(v.kept_up).toBe(false)
  })

  it('given a bench that sent slower than asked, the verdict blames the load generator', () => {
    const input = run(80, 800, () => 100)
    const v = sustainedVerdict({ ...input, rate: 100 })
    expect(v.kept_up).toBe(false)
    expect(v.reasons.join('\n')).toMatch(/load generator fell behind/)
  })
})

describe('slopePerSecond', () => {
  it('is the least-squares growth per second of [ms, value] points', () => {
    expect(slopePerSecond([[0, 1], [1000, 3], [2000, 5]])).toBeCloseTo(2, 10)
    expect(slopePerSecond([[0, 4], [500, 4], [1000, 4]])).toBe(0)
    expect(slopePerSecond([[0, 4]])).toBe(0)
  })
})
