import { describe, expect, it } from 'vitest'

import { KafkaSetupError } from '../../src/kafka/explain.js'
import { BrokerLostError } from '../../src/kafka/port.js'
import { waitForBroker } from '../../src/runtime/broker-wait.js'

function flakyBus(failures: number): { reach: () => Promise<void>; pings: () => number } {
  let pings = 0
  return {
    reach: async () => {
      if (++pings <= failures) throw new Error('Connection to 127.0.0.1:9092 failed.')
    },
    pings: () => pings,
  }
}

function logSink(): { warn: (fields: object, msg: string) => void; lines: string[] } {
  const lines: string[] = []
  return { warn: (_fields: object, msg: string) => void lines.push(msg), lines }
}

describe('waiting for the broker', () => {
  it('given a broker that answers on the third ping, when a role waits, then it returns and has said once what it waits for', async () => {
    const bus = flakyBus(2)
    const log = logSink()
    await waitForBroker(bus, { since: Date.now(), lostAfterMs: 60_000, log, what: '127.0.0.1:9092' })
    expect(bus.pings()).toBe(3)
    expect(log.lines).toEqual(['waiting for the Kafka broker at 127.0.0.1:9092'])
  })

  it('given a broker that never answers, when the deadline has passed, then the wait fails with the sentence a role exits with', async () => {
    const bus = flakyBus(Number.POSITIVE_INFINITY)
    const wait = waitForBroker(bus, { since: Date.now() - 12_000, lostAfterMs: 10_000, log: logSink(), what: '127.0.0.1:9092' })
    await expect(wait).rejects.toBeInstanceOf(BrokerLostError)
    await expect(wait).rejects.toThrow(/^the Kafka broker at 127\.0\.0\.1:9092 has been unreachable for 12 s, longer than SAGA_BROKER_LOST_AFTER \(10 s\)$/)
  })

  it('given a broker that answers with a refusal, when a role waits, then the setup error comes at once', async () => {
    const refusal = new KafkaSetupError('SASL authentication failed for user "u" (SCRAM-SHA-512). Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.', undefined)
    let reaches = 0
    const bus = { reach: async () => ((reaches += 1), Promise.reject(refusal)) }
    await expect(waitForBroker(bus, { since: Date.now(), lostAfterMs: 60_000, log: logSink() })).rejects.toBe(refusal)
    expect(reaches).toBe(1)
  })

  it('given a broker that answers and a group that does not yet, when a role joins again, then the joining is retried until it succeeds', async () => {
    const bus = flakyBus(0)
    let joins = 0
    await waitForBroker(bus, { since: Date.now(), lostAfterMs: 60_000, log: logSink() }, async () => {
      await bus.reach()
      if (++joins < 3) throw new Error('joinGroup failed 4 times. Connection to 127.0.0.1:9093 failed.')
    })
    expect(joins).toBe(3)
  })

  it('given a role that is stopping, when the broker does not answer, then the wait ends without an error', async () => {
    let stopping = false
    const bus = {
      reach: async () => {
        stopping = true
        throw new Error('Connection to 127.0.0.1:9092 failed.')
      },
    }
    await expect(waitForBroker(bus, { since: Date.now(), lostAfterMs: 60_000, log: logSink(), stopped: () => stopping })).resolves.toBeUndefined()
  })
})
