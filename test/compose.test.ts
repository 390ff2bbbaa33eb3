import fs from 'node:fs'

import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

import { roleNames } from '../src/saga/derive.js'
import { orderSaga } from '../src/order-saga/saga.js'

// docker-compose.yml is written by hand (Compose cannot be generated at `up`); a step whose
// participant it forgets would leave every saga waiting at that step.

interface Service {
  command?: string[]
}

const compose = parse(fs.readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, Service> }

describe('docker-compose.yml', () => {
  it.each(roleNames(orderSaga))('runs the %s role of the order saga', (role) => {
    const running = Object.values(compose.services).filter((s) => s.command?.[0] === 'start' && s.command[1] === role)
    expect(running.length, `no service runs \`sagactl start ${role}\``).toBe(1)
  })

  it('runs no role the saga does not have', () => {
    const started = Object.values(compose.services).flatMap((s) => (s.command?.[0] === 'start' ? [s.command[1]] : []))
    expect(started.sort()).toEqual(roleNames(orderSaga).sort())
  })
})
