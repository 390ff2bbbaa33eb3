import { afterEach, describe, expect, it } from 'vitest'

import { onStopSignal } from '../../src/cli/stop-signal.js'

describe('onStopSignal', () => {
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') }
  afterEach(() => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      for (const l of process.listeners(signal)) if (!before[signal].includes(l)) process.off(signal, l)
    }
  })

  it('given a stop requested, when SIGINT then SIGTERM and SIGINT again arrive, then stop runs once, with the first signal', () => {
    const calls: string[] = []
    onStopSignal((signal) => calls.push(signal))
    process.emit('SIGINT', 'SIGINT')
    process.emit('SIGTERM', 'SIGTERM')
    process.emit('SIGINT', 'SIGINT')
    expect(calls).toEqual(['SIGINT'])
  })

  it('given a stop requested, when a repeated signal arrives, then a listener stays, so the default action (exit) never runs', () => {
    onStopSignal(() => {})
    process.emit('SIGINT', 'SIGINT')
    expect(process.listenerCount('SIGINT')).toBeGreaterThan(before.SIGINT.length)
    expect(process.listenerCount('SIGTERM')).toBeGreaterThan(before.SIGTERM.length)
  })
})
