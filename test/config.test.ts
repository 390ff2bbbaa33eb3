import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { loadConfig, partitionCounts, syncFor } from '../src/config.js'
import { ConfigError } from '../src/config-env.js'

describe('configuration from the environment', () => {
  it('has the contract defaults', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({ brokers: ['127.0.0.1:9092'], port: 3000, retry: { minDelayMs: 5000, maxDelayMs: 10000, maxAttempts: 3, maxCompensationAttempts: 10 }, stepTimeoutMs: 30000, allowChaos: false })
    expect(c.dataDir.endsWith('.sagactl')).toBe(true)
    expect(c.orderLimits).toEqual({ maxAmount: 100_000_000, maxQty: 10_000 })
    expect(c.idempotencyTtlMs).toBe(24 * 3_600_000)
    expect(c.sqliteSynchronous).toBeUndefined()
  })

  it('syncs every commit of a role without a changelog, and lets a changelog be the durable copy', () => {
    const c = loadConfig({})
    expect(syncFor(c, false)).toBe('FULL')
    expect(syncFor(c, true)).toBe('NORMAL')
  })

  it('waits five minutes for a lost broker unless SAGA_BROKER_LOST_AFTER says otherwise, and refuses a bad duration', () => {
    expect(loadConfig({}).brokerLostAfterMs).toBe(5 * 60_000)
    expect(loadConfig({ SAGA_BROKER_LOST_AFTER: '45s' }).brokerLostAfterMs).toBe(45_000)
    expect(() => loadConfig({ SAGA_BROKER_LOST_AFTER: 'soon' })).toThrow(/SAGA_BROKER_LOST_AFTER must be a duration/)
  })

  it('SAGA_SQLITE_SYNC overrides both', () => {
    expect(syncFor(loadConfig({ SAGA_SQLITE_SYNC: 'full' }), true)).toBe('FULL')
    expect(syncFor(loadConfig({ SAGA_SQLITE_SYNC: 'normal' }), false)).toBe('NORMAL')
  })

  it('reads SAGA_SQLITE_SYNC in any case', () => {
    expect(loadConfig({ SAGA_SQLITE_SYNC: 'normal' }).sqliteSynchronous).toBe('NORMAL')
    expect(loadConfig({ SAGA_SQLITE_SYNC: 'FULL' }).sqliteSynchronous).toBe('FULL')
  })

  it('reads the order bounds, up to 2^53 - 1', () => {
    expect(loadConfig({ SAGA_MAX_AMOUNT: '9007199254740991', SAGA_MAX_QTY: '5' }).orderLimits).toEqual({ maxAmount: Number.MAX_SAFE_INTEGER, maxQty: 5 })
  })

  it.each([
    ['24h', 24 * 3_600_000],
    ['90m', 90 * 60_000],
    ['45s', 45_000],
    ['500ms', 500],
    ['7d', 7 * 86_400_000],
    ['1500', 1500],
  ])('reads SAGA_IDEMPOTENCY_TTL=%s as %i ms', (raw, ms) => {
    expect(loadConfig({ SAGA_IDEMPOTENCY_TTL: raw }).idempotencyTtlMs).toBe(ms)
  })

  it.each([
    ['SAGA_MAX_ATTEMPTS', 'three'],
    ['SAGA_MAX_ATTEMPTS', '0'],
    ['SAGA_MAX_COMPENSATION_ATTEMPTS', '0'],
    ['SAGA_MAX_COMPENSATION_ATTEMPTS', '2.5'],
    ['SAGA_MAX_COMPENSATION_ATTEMPTS', 'forever'],
    ['PAYMENT_SUCCESS_RATE', '1.5'],
    ['INVENTORY_SUCCESS_RATE', 'high'],
    ['SAGA_ALLOW_CHAOS', 'maybe'],
    ['PORT', '70000'],
    ['KAFKA_BROKERS', 'localhost'],
    ['SAGA_STEP_TIMEOUT_MS', '-1'],
    ['SAGA_MAX_AMOUNT', '0'],
    ['SAGA_MAX_AMOUNT', '1e308'],
    ['SAGA_MAX_AMOUNT', '9007199254740992'],
    ['SAGA_MAX_AMOUNT', '12.5'],
    ['SAGA_MAX_QTY', 'lots'],
    ['SAGA_IDEMPOTENCY_TTL', '0'],
    ['SAGA_IDEMPOTENCY_TTL', 'a day'],
    ['SAGA_IDEMPOTENCY_TTL', '2w'],
    ['SAGA_RETENTION', '0'],
    ['SAGA_RETENTION', 'a week'],
    ['SAGA_REPLICATION_FACTOR', '0'],
    ['SAGA_MIN_INSYNC_REPLICAS', 'two'],
    ['KAFKA_SSL', 'maybe'],
    ['KAFKA_SASL_MECHANISM', 'GSSAPI'],
    ['SAGA_SQLITE_SYNC', 'OFF'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name)
  })

  it('reads SAGA_MAX_COMPENSATION_ATTEMPTS into the retry policy, and says what is wrong with a bad one', () => {
    expect(loadConfig({ SAGA_MAX_COMPENSATION_ATTEMPTS: '1' }).retry.maxCompensationAttempts).toBe(1)
    expect(() => loadConfig({ SAGA_MAX_COMPENSATION_ATTEMPTS: '-3' })).toThrow('SAGA_MAX_COMPENSATION_ATTEMPTS must be an integer ≥ 1, got "-3"')
  })

  it('keeps finished orders for SAGA_RETENTION, 7 days (Kafka\'s default retention.ms) unless set', () => {
    expect(loadConfig({}).retentionMs).toBe(7 * 86_400_000)
    expect(loadConfig({ SAGA_RETENTION: '30s' }).retentionMs).toBe(30_000)
    expect(() => loadConfig({ SAGA_RETENTION: '-1d' })).toThrow(/SAGA_RETENTION must be a duration ≥ 1 ms such as 24h, 30m, 45s or 500ms, got "-1d"/)
  })

  it('refuses a max retry delay below the min', () => {
    expect(() => loadConfig({ SAGA_RETRY_MIN_DELAY_MS: '10', SAGA_RETRY_MAX_DELAY_MS: '5' })).toThrow('SAGA_RETRY_MAX_DELAY_MS')
  })
})

describe('production cluster settings', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-config-'))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name)
    fs.writeFileSync(p, text)
    return p
  }
  const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  const key = file('key.pem', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n')

  it('defaults to plaintext, no SASL, replication factor 1 and the broker\'s min.insync.replicas', () => {
    expect(loadConfig({}).kafka).toEqual({ replicationFactor: 1, fetch: { waitMs: 500, minBytes: 1 } })
  })

  it('reads replication settings', () => {
    expect(loadConfig({ SAGA_REPLICATION_FACTOR: '3', SAGA_MIN_INSYNC_REPLICAS: '2' }).kafka).toEqual({ replicationFactor: 3, minInsyncReplicas: 2, fetch: { waitMs: 500, minBytes: 1 } })
  })

  it('refuses min.insync.replicas above the replication factor: no acks=all write could succeed', () => {
    expect(() => loadConfig({ SAGA_REPLICATION_FACTOR: '2', SAGA_MIN_INSYNC_REPLICAS: '3' })).toThrow(/SAGA_MIN_INSYNC_REPLICAS \(3\) must not exceed SAGA_REPLICATION_FACTOR \(2\)/)
    expect(() => loadConfig({ SAGA_MIN_INSYNC_REPLICAS: '2' })).toThrow('SAGA_REPLICATION_FACTOR')
  })

  it('reads TLS with the CA\'s contents, verifying certificates unless told not to', () => {
    const { tls } = loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: ca }).kafka
    expect(tls).toEqual({ ca: fs.readFileSync(ca, 'utf8'), rejectUnauthorized: true, files: { ca } })
    expect(loadConfig({ KAFKA_SSL: '1', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' }).kafka.tls).toEqual({ rejectUnauthorized: false, files: {} })
  })

  it('reads a client certificate and key for mutual TLS', () => {
    const { tls } = loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: ca, KAFKA_SSL_KEY_FILE: key }).kafka
    expect(tls).toMatchObject({ cert: expect.stringContaining('CERTIFICATE'), key: expect.stringContaining('PRIVATE KEY'), files: { cert: ca, key } })
    expect(() => loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: ca })).toThrow('KAFKA_SSL_KEY_FILE')
  })

  it.each([
    [{ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: path.join(dir, 'missing.pem') }, /KAFKA_SSL_CA_FILE: cannot read ".*missing.pem" \(ENOENT\)/],
    [{ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: key }, /KAFKA_SSL_CA_FILE: ".*key.pem" is not a PEM file holding a certificate/],
    [{ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: ca, KAFKA_SSL_KEY_FILE: ca }, /KAFKA_SSL_KEY_FILE: .* is not a PEM file holding a private key/],
    [{ KAFKA_SSL_CA_FILE: ca }, /KAFKA_SSL_CA_FILE set, but KAFKA_SSL is not true/],
  ])('refuses bad TLS settings with a message naming the variable: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })

  it('reads SASL, the mechanism in any case', () => {
    expect(loadConfig({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: 's3cret' }).kafka.sasl).toEqual({ mechanism: 'SCRAM-SHA-512', username: 'alice', password: 's3cret' })
    expect(loadConfig({ KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'key', KAFKA_SASL_PASSWORD: 'secret' }).kafka.sasl?.mechanism).toBe('PLAIN')
  })

  it.each([
    [{ KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', KAFKA_SASL_PASSWORD: 'x' }, 'KAFKA_SASL_USERNAME is required when KAFKA_SASL_MECHANISM is set'],
    [{ KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', KAFKA_SASL_USERNAME: 'x' }, 'KAFKA_SASL_PASSWORD is required when KAFKA_SASL_MECHANISM is set'],
    [{ KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: 'x' }, 'KAFKA_SASL_MECHANISM is not'],
    [{ KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD: 'b' }, 'KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "OAUTHBEARER"'],
  ])('refuses incomplete SASL settings: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })
})

describe('config: the HTTP bridge', () => {
  it('given nothing, then no bridge and 409/422 decline; given the variables, then they are read', () => {
    expect(loadConfig({}).http).toEqual({ declined: [409, 422], bridges: {} })
    expect(loadConfig({ SAGA_HTTP_URL: 'https://pay.example:8443/api', SAGA_HTTP_TOKEN: 't', SAGA_HTTP_DECLINED_STATUSES: '402, 409' }).http).toEqual({ url: 'https://pay.example:8443/api', token: 't', declined: [402, 409], bridges: {} })
  })

  it.each([
    [{ SAGA_HTTP_URL: 'ftp://x' }, 'SAGA_HTTP_URL must be an http:// or https:// URL, got "ftp://x"'],
    [{ SAGA_HTTP_URL: 'not a url' }, 'SAGA_HTTP_URL must be an http:// or https:// URL'],
    [{ SAGA_HTTP_CA_FILE: '/nowhere/ca.pem' }, 'SAGA_HTTP_CA_FILE names no file: "/nowhere/ca.pem"'],
    [{ SAGA_HTTP_DECLINED_STATUSES: '409,500' }, 'SAGA_HTTP_DECLINED_STATUSES must be 4xx statuses, comma-separated, got "409,500"'],
    [{ SAGA_HTTP_URL_INVENTORY: 'stock:8000' }, 'SAGA_HTTP_URL_INVENTORY must be an http:// or https:// URL, got "stock:8000"'],
  ])('refuses a bad bridge setting with a message naming the variable: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })
})

describe('config: SAGA_PARTITIONS, the partition counts of a new deployment', () => {
  it('given nothing (or blank), then no counts: every topic keeps the saga\'s', () => {
    expect(partitionCounts({})).toEqual({})
    expect(partitionCounts({ SAGA_PARTITIONS: ' ' })).toEqual({})
  })

  it('given topic=count pairs, then each topic has its count, spaces around the parts allowed', () => {
    expect(partitionCounts({ SAGA_PARTITIONS: 'order.events=64, inventory.commands = 32,payment.commands=32' })).toEqual({ 'order.events': 64, 'inventory.commands': 32, 'payment.commands': 32 })
  })

  it.each(['order.events', 'order.events=', 'order.events=0', 'order.events=-4', 'order.events=2.5', 'order.events=16,', '=16', 'order events=16', 'order.events=16;inventory.commands=8', 'order.events=99999999999999999999'])(
    'refuses "%s" with one sentence naming the variable and the expected form',
    (raw) => {
      const refused = (() => {
        try {
          partitionCounts({ SAGA_PARTITIONS: raw })
        } catch (error) {
          return error
        }
        return undefined
      })()
      expect(refused).toBeInstanceOf(ConfigError)
      expect((refused as Error).message).toBe(`SAGA_PARTITIONS must be topic=count pairs, comma-separated, each count a whole number ≥ 1, such as "order.events=16,inventory.commands=8", got "${raw}"`)
    },
  )

  it('refuses a topic named twice: which count was meant cannot be guessed', () => {
    expect(() => partitionCounts({ SAGA_PARTITIONS: 'order.events=16,order.events=32' })).toThrow('SAGA_PARTITIONS names topic order.events twice, got "order.events=16,order.events=32"')
  })

  it('takes a name that is also an Object property (constructor) as a topic name, not as a duplicate', () => {
    expect(partitionCounts({ SAGA_PARTITIONS: 'constructor=2' })).toEqual({ constructor: 2 })
  })
})

describe('config: what the roles read besides (start-role, the Kafka adapter)', () => {
  it('given nothing, then fetches long-poll 500 ms for 1 byte, the servers listen on 0.0.0.0, no loop stats, no crash point, no bridge of one role, no success rate', () => {
    const c = loadConfig({})
    expect(c.kafka.fetch).toEqual({ waitMs: 500, minBytes: 1 })
    expect(c.host).toBe('0.0.0.0')
    expect(c.loopStats).toBeUndefined()
    expect(c.crash).toBeUndefined()
    expect(c.http.bridges).toEqual({})
    expect(c.successRates).toEqual({})
  })

  it('given the variables, then they are read', () => {
    const c = loadConfig({ SAGA_FETCH_WAIT_MS: '10', SAGA_FETCH_MIN_BYTES: '65536', HOST: '127.0.0.1', SAGA_LOOP_STATS: '/tmp/loops', SAGA_CRASH_AT: 'after-commit', SAGA_CRASH_ON: 'payment.succeeded', SAGA_CRASH_SIGNAL: 'SIGSTOP', SAGA_HTTP_URL_INVENTORY: 'http://stock:8000', SHIPPING_SUCCESS_RATE: '0.25' })
    expect(c.kafka.fetch).toEqual({ waitMs: 10, minBytes: 65536 })
    expect(c).toMatchObject({ host: '127.0.0.1', loopStats: '/tmp/loops', crash: { at: 'after-commit', onType: 'payment.succeeded', signal: 'SIGSTOP' }, successRates: { SHIPPING_SUCCESS_RATE: 0.25 } })
    expect(c.http.bridges).toEqual({ SAGA_HTTP_URL_INVENTORY: 'http://stock:8000' })
  })

  it("SAGA_UI_TOKEN is the ui's action token; unset or empty, there is none", () => {
    expect(loadConfig({}).uiToken).toBeUndefined()
    expect(loadConfig({ SAGA_UI_TOKEN: '' }).uiToken).toBeUndefined()
    expect(loadConfig({ SAGA_UI_TOKEN: 'a-long-random-token' }).uiToken).toBe('a-long-random-token')
  })

  it.each([
    [{ SAGA_FETCH_WAIT_MS: 'soon' }, 'SAGA_FETCH_WAIT_MS must be an integer ≥ 0, got "soon"'],
    [{ SAGA_FETCH_MIN_BYTES: '0' }, 'SAGA_FETCH_MIN_BYTES must be an integer ≥ 1, got "0"'],
    [{ SAGA_CRASH_AT: 'whenever' }, 'SAGA_CRASH_AT must be one of before-commit, after-commit, after-publish, after-changelog, got "whenever"'],
    [{ SAGA_CRASH_AT: 'after-commit', SAGA_CRASH_SIGNAL: 'SIGTERM' }, 'SAGA_CRASH_SIGNAL must be SIGKILL or SIGSTOP, got "SIGTERM"'],
    [{ SHIPPING_SUCCESS_RATE: '2' }, 'SHIPPING_SUCCESS_RATE must be a number between 0 and 1, got "2"'],
  ])('refuses a bad value with a sentence naming the variable: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(message)
  })
})
