import { describe, expect, it } from 'vitest'

import { exactTotals, type ExitReading } from '../../../src/ops/bench/processes.js'

const exit = (pid: number, reaped: number, lastTicks: number, at = 1000, lastAt = 900): ExitReading => ({ pid, reaped, lastTicks, at, lastAt })

describe('CPU of children that exited, from the parent’s reaped-children ticks', () => {
  it('given children reaped one at a time, each rise is that child’s whole CPU time', () => {
    const totals = exactTotals([exit(1, 130, 28), exit(2, 180, 45)], 100, 2)
    expect([...totals]).toEqual([
      [1, 30],
      [2, 50],
    ])
  })

  it('given two children reaped together, neither gets the shared rise', () => {
    expect(exactTotals([exit(1, 180, 28), exit(2, 180, 45)], 100, 2).size).toBe(0)
  })

  it('given a rise larger than the child could have used since its last sample, it is not the child’s alone', () => {
    // 100 ms since the last sample on 2 cores is at most 20 ticks more than the 28 seen.
    expect(exactTotals([exit(1, 200, 28)], 100, 2).size).toBe(0)
  })

  it('given a rise smaller than the child’s last sample, something else is off and it is not used', () => {
    expect(exactTotals([exit(1, 110, 28)], 100, 2).size).toBe(0)
  })
})
