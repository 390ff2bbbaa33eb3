import { readFileSync } from 'node:fs'

import { DEFAULT_FETCH_MIN_BYTES, DEFAULT_FETCH_WAIT_MS, SASL_MECHANISMS, type KafkaOptions, type TlsSettings } from './kafka/connection.js'
import { bool, ConfigError, int, type Env } from './config-env.js'

// Kept apart from the rest of the configuration: each check refuses a combination the broker would
// reject only at connect time, or worse, accept in a weaker form than was meant (clear text, no auth).

function pemFile(env: Env, name: string, kind: string): string | undefined {
  const file = env[name]
  if (file === undefined || file === '') return undefined
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError(`${name}: cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) throw new ConfigError(`${name}: "${file}" is not a PEM file holding a ${kind.toLowerCase()}`)
  return text
}

function tlsSettings(env: Env): TlsSettings | undefined {
  const tlsOnly = ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE', 'KAFKA_SSL_REJECT_UNAUTHORIZED'].filter((n) => env[n])
  if (!bool(env, 'KAFKA_SSL', false)) {
    // Ignoring them would connect in clear text to a cluster the user meant to reach over TLS.
    if (tlsOnly.length > 0) throw new ConfigError(`${tlsOnly.join(', ')} set, but KAFKA_SSL is not true; set KAFKA_SSL=true to connect with TLS`)
    return undefined
  }
  const ca = pemFile(env, 'KAFKA_SSL_CA_FILE', 'CERTIFICATE')
  const cert = pemFile(env, 'KAFKA_SSL_CERT_FILE', 'CERTIFICATE')
  const key = pemFile(env, 'KAFKA_SSL_KEY_FILE', 'PRIVATE KEY')
  if (!cert !== !key) throw new ConfigError('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (a client certificate and its key); set both or neither')
  return {
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    rejectUnauthorized: bool(env, 'KAFKA_SSL_REJECT_UNAUTHORIZED', true),
    files: { ...(ca ? { ca: env.KAFKA_SSL_CA_FILE } : {}), ...(cert ? { cert: env.KAFKA_SSL_CERT_FILE } : {}), ...(key ? { key: env.KAFKA_SSL_KEY_FILE } : {}) },
  }
}

export function kafkaOptions(env: Env): KafkaOptions {
  const tls = tlsSettings(env)
  const rawMechanism = env.KAFKA_SASL_MECHANISM
  let sasl: KafkaOptions['sasl']
  if (rawMechanism) {
    const mechanism = SASL_MECHANISMS.find((m) => m === rawMechanism.toUpperCase())
    if (!mechanism) throw new ConfigError(`KAFKA_SASL_MECHANISM must be one of ${SASL_MECHANISMS.join(', ')}, got "${rawMechanism}"`)
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']) {
      if (!env[name]) throw new ConfigError(`${name} is required when KAFKA_SASL_MECHANISM is set`)
    }
    sasl = { mechanism, username: env.KAFKA_SASL_USERNAME!, password: env.KAFKA_SASL_PASSWORD! }
  } else if (env.KAFKA_SASL_USERNAME || env.KAFKA_SASL_PASSWORD) {
    throw new ConfigError(`KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD set, but KAFKA_SASL_MECHANISM is not; set it to one of ${SASL_MECHANISMS.join(', ')}`)
  }
  const replicationFactor = int(env, 'SAGA_REPLICATION_FACTOR', 1, 1)
  const minInsync = env.SAGA_MIN_INSYNC_REPLICAS ? int(env, 'SAGA_MIN_INSYNC_REPLICAS', 1, 1) : undefined
  if (minInsync !== undefined && minInsync > replicationFactor) {
    // acks=all could then never be satisfied: every write would fail with NOT_ENOUGH_REPLICAS.
    throw new ConfigError(`SAGA_MIN_INSYNC_REPLICAS (${minInsync}) must not exceed SAGA_REPLICATION_FACTOR (${replicationFactor}), or no write could ever succeed`)
  }
  const fetch = { waitMs: int(env, 'SAGA_FETCH_WAIT_MS', DEFAULT_FETCH_WAIT_MS, 0), minBytes: int(env, 'SAGA_FETCH_MIN_BYTES', DEFAULT_FETCH_MIN_BYTES, 1) }
  return { ...(tls ? { tls } : {}), ...(sasl ? { sasl } : {}), replicationFactor, ...(minInsync !== undefined ? { minInsyncReplicas: minInsync } : {}), fetch }
}
