import { describe, expect, it } from 'vitest'

import { orderSaga } from '../../../src/order-saga/saga.js'
import { renderSagaReport, type SagaReport } from '../../../src/services/orchestrator/timeline.js'

const base: SagaReport = {
  order_id: 'o-1',
  saga_id: 's-1',
  status: 'paused',
  outcome: null,
  reason: null,
  stuck_reason: null,
  cancel_requested: null,
  paused: null,
  resumed: null,
  branches: null,
  deadline_at: null,
  version: null,
  step: 'charge_payment',
  attempt: 1,
  started_at: '2030-01-01T00:00:00.000Z',
  finished_at: null,
  timeline: [],
}

describe('renderSagaReport: who asked for what, and when', () => {
  it('given a parallel stage under way and a deadline, then each branch by name with its status, and the deadline', () => {
    const text = renderSagaReport({ ...base, status: 'running', step: 'reserve_inventory+charge_payment', branches: { reserve_inventory: { status: 'done', attempt: 1 }, charge_payment: { status: 'waiting_retry', attempt: 2 } }, deadline_at: '2030-01-01T00:10:00.000Z' }, orderSaga)
    expect(text).toContain('branches: reserve_inventory done, charge_payment waiting retry (attempt 2)')
    expect(text).toContain('deadline 2030-01-01T00:10:00.000Z')
  })

  it('given a paused saga, then who paused it, why, when, the status it resumes to, and how to resume it', () => {
    const text = renderSagaReport({ ...base, paused: { reason: 'address check', requested_by: 'api', at: '2030-01-01T00:01:00.000Z', request_id: 'r-1', was: 'waiting_retry' } }, orderSaga)
    expect(text).toContain('status PAUSED (at charge_payment, attempt 1)')
    expect(text).toContain('paused by api at 2030-01-01T00:01:00.000Z: address check (request r-1); it was waiting_retry')
    expect(text).toContain('resume with: sagactl saga resume o-1')
    expect(text).not.toContain('failed while paused')
  })

  it('given a failure recorded while paused, then it says the failure waits for the resume', () => {
    const paused = { reason: 'x', requested_by: 'api', at: '2030-01-01T00:01:00.000Z', request_id: 'r-1', was: 'running' as const, failure: { retryable: true, reason: 'declined' } }
    expect(renderSagaReport({ ...base, paused }, orderSaga)).toContain('failed while paused (declined); handled on resume')
  })

  it('given a saga resumed and then cancelled, then the last resume and the cancel request, and no pause', () => {
    const text = renderSagaReport(
      {
        ...base,
        status: 'compensating',
        resumed: { reason: 'no reason given', requested_by: 'sagactl saga resume', at: '2030-01-01T00:02:00.000Z', request_id: 'r-2' },
        cancel_requested: { reason: 'customer asked', requested_by: 'api', at: '2030-01-01T00:03:00.000Z', request_id: 'r-3' },
      },
      orderSaga,
    )
    expect(text).toContain('last resumed by sagactl saga resume at 2030-01-01T00:02:00.000Z (request r-2)')
    expect(text).toContain('cancel requested by api at 2030-01-01T00:03:00.000Z: customer asked (request r-3)')
    expect(text).not.toContain('paused by')
  })
})
