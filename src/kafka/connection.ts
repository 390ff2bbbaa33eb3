// How sagactl reaches a production cluster (TLS, SASL) and how durable the topics it creates
// are. Client-agnostic: any adapter of the port takes these.

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const
export type SaslMechanism = (typeof SASL_MECHANISMS)[number]

export interface TlsSettings {
  /** PEM contents, not paths: files are read once, when the configuration is loaded. */
  ca?: string
  cert?: string
  key?: string
  rejectUnauthorized: boolean
  /** Where each PEM came from, so an error can name the file to fix. */
  files: { ca?: string; cert?: string; key?: string }
}

export interface SaslSettings {
  mechanism: SaslMechanism
  username: string
  password: string
}

// Role consumers long-poll: the broker answers as soon as a record is readable, which under
// read_committed is when the commit marker lands, or after the wait with nothing. A short
// wait with a large minimum (10 ms / 64 KiB, 0.3) made every idle consumer fetch a hundred times a
// second and every record wait for the next poll: idle fell from 19.5 % to 6.2 % of a core and the
// p50 at 20/s from 48 to 21 ms, with the burst and 200/s unchanged (docs/benchmarks.md).
export const DEFAULT_FETCH_WAIT_MS = 500
export const DEFAULT_FETCH_MIN_BYTES = 1

export interface KafkaOptions {
  tls?: TlsSettings
  sasl?: SaslSettings
  /** Replication factor of every topic sagactl creates; 1 when unset. */
  replicationFactor?: number
  /** min.insync.replicas of every topic sagactl creates; the broker's default when unset. */
  minInsyncReplicas?: number
  /** A role consumer's long poll (SAGA_FETCH_WAIT_MS, SAGA_FETCH_MIN_BYTES); the defaults when unset. */
  fetch?: { waitMs: number; minBytes: number }
}
