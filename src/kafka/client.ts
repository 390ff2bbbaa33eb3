import type { BaseOptions, Message } from '@platformatic/kafka'

import type { KafkaOptions } from './connection.js'
import type { ConsumedRecord, ProducedRecord } from './port.js'

// What every part of the adapter shares: how a client reaches the cluster, and records in and out.

export function toRecord(message: Message<Buffer, Buffer, Buffer, Buffer>): ConsumedRecord {
  const headers: Record<string, string> = {}
  for (const [k, v] of message.headers) headers[k.toString()] = v.toString()
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    key: message.key && message.key.length > 0 ? message.key : null,
    value: message.value ?? null,
    headers,
    timestamp: message.timestamp,
  }
}

export type Connection = Pick<BaseOptions, 'bootstrapBrokers' | 'tls' | 'sasl'>

/** What every client needs to reach the cluster: bootstrap servers, TLS and SASL. */
export function connectionOptions(brokers: string[], options: KafkaOptions = {}): Connection {
  const { tls, sasl } = options
  return {
    bootstrapBrokers: brokers,
    ...(tls ? { tls: { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}), rejectUnauthorized: tls.rejectUnauthorized } } : {}),
    ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } } : {}),
  }
}

export type ClientOptions = Connection & { clientId: string }

/** Builds every client of one bus (`<clientId>-<role>`): one place for connection settings. */
export type ClientFactory = (role: string) => ClientOptions

export function toMessage(r: ProducedRecord): { topic: string; key: Buffer; value: Buffer | undefined; headers?: Map<Buffer, Buffer>; partition?: number } {
  return {
    topic: r.topic,
    key: Buffer.from(r.key),
    // A null value is a tombstone on a compacted topic.
    value: r.value === null ? undefined : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value),
    ...(r.headers ? { headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) } : {}),
    ...(r.partition !== undefined ? { partition: r.partition } : {}),
  }
}

export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}

export async function closeQuietly(close: () => unknown): Promise<void> {
  try {
    await close()
  } catch {
    // Closing is best effort: the group coordinator expires what we could not leave cleanly.
  }
}
