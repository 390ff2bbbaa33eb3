import { afterEach, describe, expect, it } from 'vitest'

import { Supervisor } from '../../src/ops/supervisor.js'

// Stand-in processes instead of roles: what is tested is when a kill counts, not what a role does.
const LIVES = ['-e', 'setInterval(() => {}, 1000)']
const DIES = ['-e', 'process.exit(3)']

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('Supervisor.kill', () => {
  let supervisor: Supervisor | undefined
  afterEach(async () => {
    await supervisor?.stopAll()
  })

  it('given a running unit, when killed, then true, and by then it has exited', async () => {
    const exits: string[] = []
    supervisor = new Supervisor({ env: process.env, argv: () => LIVES, onExit: (unit, _code, signal, expected) => exits.push(`${unit} ${signal} ${expected}`) })
    supervisor.start('payment')
    expect(supervisor.running('payment')).toBe(true)
    expect(await supervisor.kill('payment', 'SIGKILL')).toBe(true)
    expect(supervisor.running('payment')).toBe(false)
    expect(exits).toEqual(['payment SIGKILL true'])
  })

  it('given a unit already killed, when killed again, then false and nothing is signalled', async () => {
    supervisor = new Supervisor({ env: process.env, argv: () => LIVES })
    supervisor.start('inventory')
    expect(await supervisor.kill('inventory', 'SIGKILL')).toBe(true)
    expect(await supervisor.kill('inventory', 'SIGKILL')).toBe(false)
  })

  it('given a unit that died on its own and is not restarted yet, when killed, then false', async () => {
    const exits: boolean[] = []
    supervisor = new Supervisor({ env: process.env, argv: () => DIES, onExit: (_unit, _code, _signal, expected) => exits.push(expected) })
    supervisor.start('orchestrator')
    await until('the unit to exit', () => !supervisor!.running('orchestrator'))
    expect(await supervisor.kill('orchestrator', 'SIGKILL')).toBe(false)
    await until('its exit to be reported', () => exits.length === 1)
    expect(exits).toEqual([false])
  })

  it('given a unit never started, when killed, then false', async () => {
    supervisor = new Supervisor({ env: process.env, argv: () => LIVES })
    expect(await supervisor.kill('api', 'SIGKILL')).toBe(false)
  })
})
