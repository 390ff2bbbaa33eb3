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

export interface KafkaOptions {
  tls?: TlsSettings
  sasl?: SaslSettings
  /** Replication factor of every topic sagactl creates; 1 when unset. */
  replicationFactor?: number
  /** min.insync.replicas of every topic sagactl creates; the broker's default when unset. */
  minInsyncReplicas?: number
}
