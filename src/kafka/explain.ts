// @platformatic/kafka reports a wrong password as "metadata failed 4 times." with the real cause
// five levels down (MultipleErrors → NetworkError → AuthenticationError → ResponseError →
// ProtocolError). This finds the causes that retrying cannot fix and says, in one sentence, what
// is wrong and which variable to change. Anything else passes through untouched, so retry and
// fencing decisions that look at the client's own errors keep working.

import type { KafkaOptions } from './connection.js'

/** Credentials, certificates or topic settings are wrong: retrying will not help. */
export class KafkaSetupError extends Error {
  override name = 'KafkaSetupError'
  /** The client's own error, for a debugger; not enumerable, so CLIs and logs print only the sentence. */
  declare readonly original: unknown

  constructor(message: string, original: unknown) {
    super(message)
    Object.defineProperty(this, 'original', { value: original, enumerable: false })
  }
}

interface Found {
  error: Record<string, unknown>
  /** "host:port" of the nearest enclosing "Connection to host:port failed." */
  address: string | undefined
}

function* walk(error: unknown, address: string | undefined = undefined, seen = new Set<unknown>()): Generator<Found> {
  if (!error || typeof error !== 'object' || seen.has(error)) return
  seen.add(error)
  const e = error as Record<string, unknown>
  const here = /Connection to (\S+:\d+) /.exec(String(e.message ?? ''))?.[1] ?? address
  yield { error: e, address: here }
  if (Array.isArray(e.errors)) for (const child of e.errors) yield* walk(child, here, seen)
  if (e.cause) yield* walk(e.cause, here, seen)
}

/**
 * The innermost reasons inside a client error ("Producing messages failed." says nothing of why):
 * each distinct leaf message, with its protocol error id when it has one, at most five.
 */
export function errorCauses(error: unknown): string[] {
  const causes = new Set<string>()
  for (const { error: e } of walk(error)) {
    if (Array.isArray(e.errors) && e.errors.length > 0) continue
    if (e.cause) continue
    causes.add(`${typeof e.apiId === 'string' ? `${e.apiId}: ` : ''}${String(e.message ?? e)}`)
  }
  return [...causes].slice(0, 5)
}

/**
 * The topic a read or write found missing, if that is what `error` says: the client's own words
 * ("Unknown topic x.") name the topic but not what the operator got wrong, which the caller knows.
 */
export function unknownTopic(error: unknown): string | undefined {
  for (const { error: e } of walk(error)) {
    const named = /^Unknown topic (\S+?)\.?$/.exec(String(e.message ?? ''))?.[1]
    if (named) return named
  }
  return undefined
}

// Node's (OpenSSL's) codes for a certificate that does not check out.
const CERTIFICATE_CODES = /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT(_LOCALLY)?|DECRYPT_CERT_SIGNATURE)|CERT_\w+|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE)$/
const at = (address: string | undefined): string => (address ? ` at ${address}` : '')

function certificateAdvice(code: string, options: KafkaOptions): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') return 'The certificate does not name the host in KAFKA_BROKERS; connect by a name the certificate lists.'
  if (/EXPIRED|NOT_YET_VALID/.test(code)) return "The broker's certificate is outside its validity period (or this machine's clock is wrong)."
  const ca = options.tls?.files.ca
  return ca
    ? `The broker's certificate is not signed by the CA in KAFKA_SSL_CA_FILE (${ca}); point it at the CA certificate (PEM) of your cluster.`
    : "The broker's certificate is not signed by a CA this machine trusts; set KAFKA_SSL_CA_FILE to the CA certificate (PEM) of your cluster."
}

/** A clear KafkaSetupError when the cause is one retrying cannot fix; otherwise `error` itself. */
export function explainKafkaError(error: unknown, options: KafkaOptions = {}): unknown {
  if (error instanceof KafkaSetupError) return error
  const found = [...walk(error)]
  const sasl = options.sasl
  const who = sasl ? `user "${sasl.username}" (${sasl.mechanism})` : 'no SASL user (KAFKA_SASL_MECHANISM is not set)'

  const authFailed = found.find((f) => f.error.apiId === 'SASL_AUTHENTICATION_FAILED')
  if (authFailed) {
    const server = authFailed.error.serverErrorMessage ? `: ${String(authFailed.error.serverErrorMessage)}` : ''
    return new KafkaSetupError(`SASL authentication failed for ${who}${at(authFailed.address)}${server}. Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.`, error)
  }

  // The SASL handshake was refused: the answer lists the mechanisms the listener does accept.
  const refused = found.find((f) => f.error.apiId === 'UNSUPPORTED_SASL_MECHANISM' || f.error.apiId === 'ILLEGAL_SASL_STATE')
  if (refused) {
    const offered = found.map((f) => (f.error.response as { mechanisms?: string[] } | undefined)?.mechanisms).find(Array.isArray)
    if (offered?.length === 0) {
      return new KafkaSetupError(`The listener${at(refused.address)} does not use SASL, but KAFKA_SASL_MECHANISM is ${sasl?.mechanism ?? 'set'}. Use the SASL port of your cluster, or unset KAFKA_SASL_MECHANISM.`, error)
    }
    return new KafkaSetupError(
      `The broker${at(refused.address)} does not accept SASL mechanism ${sasl?.mechanism ?? '?'}${offered ? `; it offers ${offered.join(', ')}` : ''}. Set KAFKA_SASL_MECHANISM to one it offers.`,
      error,
    )
  }

  const certificate = found.find((f) => typeof f.error.code === 'string' && CERTIFICATE_CODES.test(f.error.code))
  if (certificate) {
    const code = certificate.error.code as string
    return new KafkaSetupError(`TLS verification of the broker's certificate failed${at(certificate.address)}: ${String(certificate.error.message)} (${code}). ${certificateAdvice(code, options)}`, error)
  }

  // Our client spoke TLS to a listener that does not, or the two found no protocol in common.
  const handshake = found.find((f) => /^ERR_SSL_|^EPROTO$/.test(String(f.error.code ?? '')) || /TLS handshake failed/.test(String(f.error.message ?? '')))
  if (handshake) {
    // The client's own wording ("TLS handshake failed. Please verify…") wraps the socket's.
    const detail = String((handshake.error.cause as Error | undefined)?.message ?? handshake.error.message)
    return new KafkaSetupError(`TLS handshake with the broker${at(handshake.address)} failed (${detail}). KAFKA_SSL=true is set: is that a TLS listener? Use the TLS port of your cluster, or unset KAFKA_SSL for a plaintext one.`, error)
  }

  const denied = found.find((f) => /_AUTHORIZATION_FAILED$/.test(String(f.error.apiId ?? '')))
  if (denied) {
    const what = String(denied.error.apiId).replace('_AUTHORIZATION_FAILED', '').toLowerCase()
    return new KafkaSetupError(
      `The cluster refused ${who}: ${what} authorization failed${denied.error.serverErrorMessage ? ` (${String(denied.error.serverErrorMessage)})` : ''}. Grant that user the ACLs sagactl needs (docs/scaling-and-guarantees.md, "Production clusters").`,
      error,
    )
  }

  const replication = found.find((f) => f.error.apiId === 'INVALID_REPLICATION_FACTOR')
  if (replication) {
    return new KafkaSetupError(`Cannot create a topic with SAGA_REPLICATION_FACTOR=${options.replicationFactor ?? 1}: ${String(replication.error.serverErrorMessage ?? replication.error.message)}`, error)
  }

  const config = found.find((f) => f.error.apiId === 'INVALID_CONFIG' || f.error.apiId === 'POLICY_VIOLATION')
  if (config) {
    return new KafkaSetupError(`The cluster refused the topic settings (SAGA_MIN_INSYNC_REPLICAS=${options.minInsyncReplicas ?? 'unset'}): ${String(config.error.serverErrorMessage ?? config.error.message)}`, error)
  }
  return error
}

/**
 * The same object, but every promise its methods return rejects with explainKafkaError's
 * translation. A Proxy rather than a wrapper class, so methods the port gains later (transactions,
 * changelogs) are covered without being listed here.
 */
export function withClearErrors<T extends object>(target: T, options: KafkaOptions): T {
  return new Proxy(target, {
    get(object, key) {
      const value: unknown = Reflect.get(object, key, object)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const result: unknown = value.apply(object, args)
        return result instanceof Promise ? result.catch((error: unknown) => Promise.reject(explainKafkaError(error, options))) : result
      }
    },
  })
}
