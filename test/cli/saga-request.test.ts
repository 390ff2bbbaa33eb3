import { Errors } from '@oclif/core'
import { describe, expect, it } from 'vitest'

import { askAboutSaga, type SagaRequestContext } from '../../src/cli/saga-request.js'
import { PauseNotDone } from '../../src/services/orchestrator/pause.js'
import { SagaNotFound } from '../../src/services/orchestrator/timeline.js'

// Nothing here reaches a broker: the bus is opened lazily and `ask` never uses it.
const flags = { brokers: '127.0.0.1:9', wait: false, timeout: 7 }

describe('askAboutSaga: what every saga request command shares', () => {
  it('hands the request its context: who asks (the command), whether to wait and for how long', async () => {
    let seen: SagaRequestContext | undefined
    const result = await askAboutSaga(flags, 'saga pause', async (c) => {
      seen = c
      return 'done'
    })
    expect(result).toBe('done')
    expect(seen).toMatchObject({ requestedBy: 'sagactl saga pause', wait: false, timeoutMs: 7000, changelog: 'sagactl.orchestrator.changelog', topics: { orderEvents: 'order.events', control: 'sagactl.control' } })
  })

  it.each([
    ['a request the orchestrator did not take', new PauseNotDone('the orchestrator did not pause the saga of order o-1: the saga is compensating')],
    ['an unknown id', new SagaNotFound('no saga with order or saga id o-2')],
  ])('turns %s into exit 1 with its sentence', async (_what, error) => {
    const failed = await askAboutSaga(flags, 'saga pause', async () => {
      throw error
    }).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(Errors.CLIError)
    expect((failed as Errors.CLIError).oclif.exit).toBe(1)
    expect((failed as Error).message).toBe(error.message)
  })

  it('leaves any other error as it is: a fault, not an answer', async () => {
    const fault = new TypeError('boom')
    await expect(askAboutSaga(flags, 'saga resume', async () => Promise.reject(fault))).rejects.toBe(fault)
  })
})
