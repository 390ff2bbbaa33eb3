import { describe, expect, it } from 'vitest'

import { parsePrometheusText } from '../../src/observe/prom-text.js'
import { devEndpoints, quantile, summarize, type Scrape } from '../../src/ops/top.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import { roleNames } from '../../src/saga/derive.js'

const orchestrator = (completed: number, buckets: [string, number][]): string =>
  [
    '# TYPE sagactl_saga_duration_seconds histogram',
    ...buckets.map(([le, n]) => `sagactl_saga_duration_seconds_bucket{le="${le}",outcome="completed",role="orchestrator"} ${n}`),
    `sagactl_saga_duration_seconds_count{outcome="completed",role="orchestrator"} ${completed}`,
    '# TYPE sagactl_sagas gauge',
    'sagactl_sagas{status="running",role="orchestrator"} 3',
    'sagactl_sagas{status="stuck",role="orchestrator"} 1',
    '# TYPE sagactl_consumer_lag_records gauge',
    'sagactl_consumer_lag_records{topic="order.events",partition="0",role="orchestrator"} 2',
    'sagactl_consumer_lag_records{topic="order.events",partition="1",role="orchestrator"} 5',
  ].join('\n')

const at = (endpoint: string, ms: number, text?: string): Scrape => (text === undefined ? { endpoint, at: ms, error: 'ECONNREFUSED' } : { endpoint, at: ms, metrics: parsePrometheusText(text) })

const ROLES = roleNames(orderSaga)

describe('top', () => {
  it('quantile interpolates within the bucket holding the rank, like histogram_quantile', () => {
    const buckets = [
      { le: 0.1, count: 0 },
      { le: 1, count: 50 },
      { le: 2, count: 100 },
      { le: Infinity, count: 100 },
    ]
    expect(quantile(0.5, buckets)).toBeCloseTo(1)
    expect(quantile(0.75, buckets)).toBeCloseTo(1.5)
    expect(quantile(0.5, [{ le: Infinity, count: 0 }])).toBeNull()
  })

  it('sagas/s from two scrapes, lag summed over partitions, an endpoint that does not answer listed as down', () => {
    const url = 'http://h:9410/metrics'
    const before = [at(url, 1000, orchestrator(10, [['1', 10], ['+Inf', 10]])), at('http://h:9420/metrics', 1000)]
    const now = [at(url, 3000, orchestrator(30, [['1', 20], ['+Inf', 30]])), at('http://h:9420/metrics', 3000)]
    const view = summarize(ROLES, now, before)
    expect(view.sagas_per_s).toBe(10)
    expect(view.finished.completed).toBe(30)
    expect(view.in_flight).toEqual({ running: 3, waiting_retry: 0, paused: 0, compensating: 0, stuck: 1 })
    expect(view.roles[0]).toMatchObject({ role: 'orchestrator', up: 1, endpoints: 1, lag: 7 })
    expect(view.down).toEqual([{ endpoint: 'http://h:9420/metrics', error: 'ECONNREFUSED' }])
    expect(view.roles.map((r) => r.role)).toEqual(['orchestrator', '?'])
    const named = summarize(ROLES, [{ ...now[1]!, role: 'inventory' }])
    expect(named.roles).toMatchObject([{ role: 'inventory', up: 0, endpoints: 1 }])
    expect(summarize(ROLES, now).sagas_per_s).toBeNull()
  })

  it('the default endpoints are the ports sagactl dev gives each instance', () => {
    expect(devEndpoints(orderSaga, 3000, 2, 9400).map((e) => e.url)).toEqual([
      'http://127.0.0.1:3000/metrics', 'http://127.0.0.1:3001/metrics',
      'http://127.0.0.1:9410/metrics', 'http://127.0.0.1:9411/metrics',
      'http://127.0.0.1:9420/metrics', 'http://127.0.0.1:9421/metrics',
      'http://127.0.0.1:9430/metrics', 'http://127.0.0.1:9431/metrics',
      'http://127.0.0.1:9440/metrics', 'http://127.0.0.1:9441/metrics',
    ])
  })
})
