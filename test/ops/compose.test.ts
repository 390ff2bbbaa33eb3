import fs from 'node:fs'

import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

import { checkCompose, composeServices } from '../../src/ops/compose.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import { threeStepSaga } from '../saga/three-step-saga.js'

const file = fs.readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')

describe('docs compose: the Compose file against the saga', () => {
  it('given the repository’s docker-compose.yml and the order saga, then every role runs once', () => {
    expect(checkCompose('docker-compose.yml', file, orderSaga)).toEqual({ ok: true, file: 'docker-compose.yml', missing: [], unknown: [], twice: [] })
  })

  it('given a saga with a step the file does not run, then that role is named as missing', () => {
    expect(checkCompose('docker-compose.yml', file, threeStepSaga)).toMatchObject({ ok: false, missing: ['shipping'], unknown: [], twice: [] })
  })

  it('given a file that starts a role twice and one the saga lacks, then both are named', () => {
    const text = 'services:\n  a: { command: [start, api] }\n  b: { command: [start, api] }\n  c: { command: [start, ghost] }\n'
    expect(checkCompose('f.yml', text, orderSaga)).toMatchObject({ ok: false, missing: ['orchestrator', 'inventory', 'payment', 'notifier'], unknown: ['ghost'], twice: ['api'] })
  })

  it('prints a service per role that the check accepts', () => {
    const text = `x-role: &role\n  build: .\nservices:\n${composeServices(threeStepSaga)}\n`
    expect(Object.keys((parse(text) as { services: object }).services)).toEqual(['api', 'orchestrator', 'inventory', 'payment', 'shipping', 'notifier'])
    expect(checkCompose('generated', text, threeStepSaga).ok).toBe(true)
  })
})
