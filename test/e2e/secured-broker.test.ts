import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createCertificateAuthority, startSecuredKafka, type SecuredKafka } from '../../src/broker/secured-kafka.js'
import type { VerifyReport } from '../../src/ops/verify.js'
import { ALL_ROLES, System } from './harness.js'

// oclif wraps error text to the terminal width and indents it (with a › for its own errors).
const flat = (text: string): string => text.replace(/(\s|›)+/g, ' ')
// Every way of failing below must end well within this: retries are bounded, nothing waits forever.
const PROMPT_MS = 30_000

describe('a SASL_SSL broker: TLS with a CA made here, SCRAM-SHA-512 users', () => {
  let kafka: SecuredKafka
  let env: Record<string, string>
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-secured-test-'))
  const systems: System[] = []

  beforeAll(async () => {
    kafka = await startSecuredKafka({ users: { alice: 'alice-secret' }, log: (line) => console.log(`[secured kafka] ${line}`) })
    env = { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: kafka.caFile, KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: 'alice-secret' }
  })
  afterAll(async () => {
    for (const system of systems) await system.stop()
    await kafka?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  /** A System for CLI runs only; its own bus never connects unless used. */
  const cliSystem = (): System => {
    const system = new System(env, { brokers: kafka.brokers })
    systems.push(system)
    return system
  }

  it('the five roles connect over TLS with SCRAM, an order completes, and verify is clean', async () => {
    const system = await System.start(ALL_ROLES, env, { brokers: kafka.brokers })
    systems.push(system)
    const { order_id } = await system.postOrder()
    const events = await system.waitForFinal(order_id)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.succeeded', 'order.completed'])

    const verify = await system.cli(['verify', '--json'])
    expect(verify.code).toBe(0)
    expect(JSON.parse(verify.stdout) as VerifyReport).toMatchObject({ ok: true, orders: 1, completed: 1, breaches: [] })
  })

  it('a wrong password: `sagactl start` exits 1 promptly, saying SASL authentication failed for the user, without a stack trace', async () => {
    const started = Date.now()
    const result = await cliSystem().cli(['start', 'orchestrator'], { KAFKA_SASL_PASSWORD: 'not-her-password' })
    expect(Date.now() - started).toBeLessThan(PROMPT_MS)
    expect(result.code).toBe(1)
    const text = flat(result.stderr)
    expect(text).toContain(`SASL authentication failed for user "alice" (SCRAM-SHA-512) at ${kafka.brokers}`)
    expect(text).toContain('invalid credentials')
    expect(text).toContain('Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD')
    expect(result.stderr).not.toMatch(/^\s+at /m)
    expect(result.stdout).not.toContain('orchestrator started')
  })

  it('a wrong password on an admin command with --json: the same sentence as the JSON error, exit 1', async () => {
    const result = await cliSystem().cli(['verify', '--json'], { KAFKA_SASL_PASSWORD: 'not-her-password' })
    expect(result.code).toBe(1)
    const { error } = JSON.parse(result.stdout) as { error: { name: string; message: string } }
    expect(error.name).toBe('KafkaSetupError')
    expect(error.message).toMatch(/^SASL authentication failed for user "alice" \(SCRAM-SHA-512\)/)
  })

  it('a CA that did not sign the broker certificate: `sagactl start` exits 1, saying TLS verification failed and naming the CA file', async () => {
    const other = await createCertificateAuthority(path.join(dir, 'other-ca'), 'some other CA')
    const started = Date.now()
    const result = await cliSystem().cli(['start', 'inventory'], { KAFKA_SSL_CA_FILE: other.pem })
    expect(Date.now() - started).toBeLessThan(PROMPT_MS)
    expect(result.code).toBe(1)
    const text = flat(result.stderr)
    expect(text).toContain(`TLS verification of the broker's certificate failed at ${kafka.brokers}`)
    expect(text).toContain('SELF_SIGNED_CERT_IN_CHAIN')
    expect(text).toContain(`not signed by the CA in KAFKA_SSL_CA_FILE (${other.pem})`)
    expect(result.stderr).not.toMatch(/^\s+at /m)
  })

  it('a mechanism the broker does not offer: exit 1, naming what it offers', async () => {
    const result = await cliSystem().cli(['dlq', 'list'], { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256' })
    expect(result.code).toBe(1)
    expect(flat(result.stderr)).toContain('does not accept SASL mechanism SCRAM-SHA-256; it offers SCRAM-SHA-512. Set KAFKA_SASL_MECHANISM')
  })

  it('an unreadable CA file is refused before any connection, exit 2, naming the variable', async () => {
    const result = await cliSystem().cli(['start', 'api'], { KAFKA_SSL_CA_FILE: path.join(dir, 'missing.pem') })
    expect(result.code).toBe(2)
    expect(flat(result.stderr)).toContain(`KAFKA_SSL_CA_FILE: cannot read "${path.join(dir, 'missing.pem')}" (ENOENT)`)
  })
})
