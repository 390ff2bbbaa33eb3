import { randomUUID } from 'node:crypto'

import type { TopicKey } from './names.js'

// The envelope every message of every saga shares. Which types exist is data of the saga
// definition (saga/derive.ts eventTypes, commandTypes), so a type is any string it names.
export type EventType = string
export type CommandType = string

export type Payload = Record<string, unknown>

export interface Envelope {
  event_type?: string
  command_type?: string
  order_id: string
  saga_id: string
  message_id: string
  payload: Payload
  occurred_at?: string
  causation_id?: string
  /** The hash of the saga definition the writer runs (derive.ts definitionHash); a role running another refuses the message. */
  saga_definition?: string
}

/** An envelope whose type has been resolved; `type` is the event or command type. */
export interface Message extends Envelope {
  type: string
}

export interface Outgoing {
  topic: TopicKey
  envelope: Envelope
}

export const MAX_MESSAGE_BYTES = 256 * 1024

export type ParseResult = { ok: true; message: Message } | { ok: false; reason: string }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Everything that makes a record poison at the envelope level is decided here, once. */
export function parseEnvelope(value: Buffer | null | undefined): ParseResult {
  if (!value || value.length === 0) return { ok: false, reason: 'empty message' }
  if (value.length > MAX_MESSAGE_BYTES) return { ok: false, reason: `oversize message: ${value.length} bytes > ${MAX_MESSAGE_BYTES}` }
  let json: unknown
  try {
    json = JSON.parse(value.toString('utf8'))
  } catch (error) {
    return { ok: false, reason: `invalid JSON: ${(error as Error).message}` }
  }
  if (!isRecord(json)) return { ok: false, reason: 'envelope is not a JSON object' }
  for (const field of ['order_id', 'saga_id', 'message_id'] as const) {
    if (typeof json[field] !== 'string' || json[field] === '') return { ok: false, reason: `envelope field "${field}" missing or not a non-empty string` }
  }
  if (!isRecord(json.payload)) return { ok: false, reason: 'envelope field "payload" missing or not an object' }
  const type = json.event_type ?? json.command_type
  if (typeof type !== 'string' || type === '') return { ok: false, reason: 'envelope has neither "event_type" nor "command_type"' }
  return { ok: true, message: { ...(json as unknown as Envelope), type } }
}

export function typeOf(envelope: Envelope): string {
  return envelope.event_type ?? envelope.command_type ?? ''
}

export interface NewMessage {
  order_id: string
  saga_id: string
  payload: Payload
  causation_id?: string
}

export function event(type: EventType, m: NewMessage, now: number, messageId: string = randomUUID()): Envelope {
  return { event_type: type, order_id: m.order_id, saga_id: m.saga_id, message_id: messageId, payload: m.payload, occurred_at: new Date(now).toISOString(), ...(m.causation_id ? { causation_id: m.causation_id } : {}) }
}

export function command(type: CommandType, m: NewMessage, now: number, messageId: string = randomUUID()): Envelope {
  return { command_type: type, order_id: m.order_id, saga_id: m.saga_id, message_id: messageId, payload: m.payload, occurred_at: new Date(now).toISOString(), ...(m.causation_id ? { causation_id: m.causation_id } : {}) }
}
