import { AuthenticationError, MultipleErrors, NetworkError, ResponseError, UserError } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'

import type { KafkaOptions } from '../../src/kafka/connection.js'
import { errorCauses, explainKafkaError, KafkaSetupError, unknownTopic, withClearErrors } from '../../src/kafka/explain.js'

// Shaped like what @platformatic/kafka 1.35 threw against a real SASL_SSL broker
// (test/e2e/secured-broker.test.ts drives the real thing): retries around a pool around a connection.
const SASL_AUTHENTICATE = 36
const SASL_HANDSHAKE = 17
const asClientThrowsIt = (cause: Error): Error =>
  new MultipleErrors('metadata failed 4 times.', [new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to b-1.example:9096 failed.', { cause })])])
const nodeError = (message: string, code: string): Error => Object.assign(new Error(message), { code })

const options: KafkaOptions = {
  tls: { ca: 'PEM', rejectUnauthorized: true, files: { ca: '/etc/sagactl/ca.pem' } },
  sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice', password: 'secret' },
  replicationFactor: 3,
}

describe('explainKafkaError', () => {
  it('a refused SCRAM login: names the user, the mechanism, the broker, the server reason and the variables', () => {
    const error = asClientThrowsIt(
      new AuthenticationError('SASL authentication failed.', {
        cause: new ResponseError(SASL_AUTHENTICATE, 2, { '/': [58, 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'] }, { errorCode: 58 }),
      }),
    )
    const explained = explainKafkaError(error, options)
    expect(explained).toBeInstanceOf(KafkaSetupError)
    expect((explained as Error).message).toBe(
      'SASL authentication failed for user "alice" (SCRAM-SHA-512) at b-1.example:9096: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512. Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.',
    )
    expect((explained as KafkaSetupError).original).toBe(error)
    expect(Object.keys(explained as object)).not.toContain('original')
  })

  it('a mechanism the broker does not offer: lists what it offers', () => {
    const error = asClientThrowsIt(new AuthenticationError('Cannot find a suitable SASL mechanism.', { cause: new ResponseError(SASL_HANDSHAKE, 1, { '/': [33, null] }, { errorCode: 33, mechanisms: ['SCRAM-SHA-256', 'PLAIN'] }) }))
    expect((explainKafkaError(error, options) as Error).message).toBe('The broker at b-1.example:9096 does not accept SASL mechanism SCRAM-SHA-512; it offers SCRAM-SHA-256, PLAIN. Set KAFKA_SASL_MECHANISM to one it offers.')
  })

  it('SASL against a listener without SASL: says so', () => {
    const error = asClientThrowsIt(new AuthenticationError('Cannot find a suitable SASL mechanism.', { cause: new ResponseError(SASL_HANDSHAKE, 1, { '/': [34, null] }, { errorCode: 34, mechanisms: [] }) }))
    expect((explainKafkaError(error, options) as Error).message).toMatch(/^The listener at b-1.example:9096 does not use SASL, but KAFKA_SASL_MECHANISM is SCRAM-SHA-512/)
  })

  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain', "not signed by the CA in KAFKA_SSL_CA_FILE (/etc/sagactl/ca.pem)"],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate', 'not signed by the CA in KAFKA_SSL_CA_FILE'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames", 'does not name the host in KAFKA_BROKERS'],
    ['CERT_HAS_EXPIRED', 'certificate has expired', 'outside its validity period'],
  ])('a certificate that does not verify (%s): TLS verification failed, and what to check', (code, message, advice) => {
    const explained = explainKafkaError(asClientThrowsIt(nodeError(message, code)), options) as Error
    expect(explained.message).toContain(`TLS verification of the broker's certificate failed at b-1.example:9096: ${message} (${code}).`)
    expect(explained.message).toContain(advice)
  })

  it('an untrusted certificate without KAFKA_SSL_CA_FILE: suggests setting it', () => {
    const explained = explainKafkaError(asClientThrowsIt(nodeError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN')), { tls: { rejectUnauthorized: true, files: {} } }) as Error
    expect(explained.message).toContain('not signed by a CA this machine trusts; set KAFKA_SSL_CA_FILE')
  })

  it('TLS against a plaintext listener: the socket\'s reason, and the TLS setting to check', () => {
    const error = asClientThrowsIt(new UserError('TLS handshake failed. Please verify the broker supports TLS.', { cause: nodeError('Client network socket disconnected before secure TLS connection was established', 'ECONNRESET') }))
    expect((explainKafkaError(error, options) as Error).message).toBe(
      'TLS handshake with the broker at b-1.example:9096 failed (Client network socket disconnected before secure TLS connection was established). KAFKA_SSL=true is set: is that a TLS listener? Use the TLS port of your cluster, or unset KAFKA_SSL for a plaintext one.',
    )
  })

  it('a replication factor the cluster cannot hold: names SAGA_REPLICATION_FACTOR and keeps the broker\'s reason', () => {
    const error = new ResponseError(19, 7, { '/topics/0': [38, 'Unable to replicate the partition 3 time(s): only 1 broker(s) are registered.'] }, {})
    expect((explainKafkaError(error, options) as Error).message).toBe('Cannot create a topic with SAGA_REPLICATION_FACTOR=3: Unable to replicate the partition 3 time(s): only 1 broker(s) are registered.')
  })

  it('a missing ACL: names the user and what was refused', () => {
    const error = new ResponseError(19, 7, { '/topics/0': [29, 'Authorization failed.'] }, {})
    expect((explainKafkaError(error, options) as Error).message).toMatch(/^The cluster refused user "alice" \(SCRAM-SHA-512\): topic authorization failed/)
  })

  it('leaves alone what retrying can fix: the same object comes back', () => {
    const refused = asClientThrowsIt(nodeError('connect ECONNREFUSED 127.0.0.1:9092', 'ECONNREFUSED'))
    const closed = new MultipleErrors('fetch failed 4 times.', [new NetworkError('Connection closed')])
    const plain = new Error('handler error')
    for (const error of [refused, closed, plain, 'a string', undefined]) expect(explainKafkaError(error, options)).toBe(error)
  })
})

describe('withClearErrors', () => {
  class Bus {
    readonly #secret = 'kept'
    refused = new Error('refused')
    value(): string {
      return this.#secret
    }
    async login(): Promise<void> {
      throw asClientThrowsIt(new AuthenticationError('SASL authentication failed.', { cause: new ResponseError(SASL_AUTHENTICATE, 2, { '/': [58, 'bad credentials'] }, {}) }))
    }
    async flaky(): Promise<void> {
      throw this.refused
    }
  }

  it('rejects with the sentence for a setup error, passes other rejections and plain values through, and keeps private fields working', async () => {
    const bus = new Bus()
    const wrapped = withClearErrors(bus, options)
    await expect(wrapped.login()).rejects.toThrow(KafkaSetupError)
    await expect(wrapped.login()).rejects.toThrow('SASL authentication failed for user "alice"')
    await expect(wrapped.flaky()).rejects.toBe(bus.refused)
    expect(wrapped.value()).toBe('kept')
    expect(wrapped.refused).toBe(bus.refused)
  })
})

describe('errorCauses: what is inside a client error', () => {
  it('given retries around a pool around a refused connection, then the innermost reasons, each once', () => {
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:9092')
    const error = new MultipleErrors('Producing messages failed.', [asClientThrowsIt(refused), asClientThrowsIt(refused), new UserError('Cannot get a connection.')])
    expect(errorCauses(error)).toEqual(['connect ECONNREFUSED 127.0.0.1:9092', 'Cannot get a connection.'])
  })

  it('given a plain error, then its own message', () => {
    expect(errorCauses(new Error('boom'))).toEqual(['boom'])
  })
})

describe('unknownTopic', () => {
  it("given the client's unknown-topic error, bare or wrapped, then the topic it names", () => {
    expect(unknownTopic(new UserError('Unknown topic inventory.commands.'))).toBe('inventory.commands')
    expect(unknownTopic(new MultipleErrors('Fetching failed.', [new UserError('Unknown topic p.cards.commands.')]))).toBe('p.cards.commands')
  })

  it('given any other error, then none', () => {
    expect(unknownTopic(new UserError('Unknown partition 3.'))).toBeUndefined()
    expect(unknownTopic(new Error('Producing messages failed.'))).toBeUndefined()
    expect(unknownTopic(undefined)).toBeUndefined()
  })
})
