import { createHash } from 'node:crypto'

import { derivedIds } from '../../runtime/ids.js'
import type { StateStore } from '../../runtime/role.js'
import { ORDER_SCOPE, type OrderView } from './order-view.js'

// Idempotency-Key as payment APIs use it: the same key and body are the same order, the same key
// with another body is a conflict, and a key names its order for a limited time only.

export const IDEMPOTENCY_SCOPE = 'idempotency-key'

export interface OrderIds {
  orderId: string
  sagaId: string
  messageId: string
}

/** What the api remembers of a key, stored under the order_id the key derived. */
export interface IdempotencyRecord {
  user_id: string | null
  key: string
  generation: number
  request_hash: string
  order_id: string
  saga_id: string
  created_at: number
}

/**
 * Ids named by a key, scoped by user. Any api instance derives the same ids, hence the same
 * order.created message_id, and downstream dedupe by message_id makes two instances' copies one
 * order. A key reused after it expired starts a new generation, so the new order's ids are new
 * and no consumer mistakes it for the old one.
 */
export function keyedIds(userId: string | null, key: string, generation = 0): OrderIds {
  const next = derivedIds(JSON.stringify(['idempotency-key', userId, key, generation]))
  return { orderId: next(), sagaId: next(), messageId: next() }
}

/** The canonical body (see orderPayload) hashed: equal bodies, however formatted, hash alike. */
export function requestHash(canonical: unknown): string {
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex')
}

export type KeySlot =
  | { live: false; generation: number; ids: OrderIds }
  /** `record` is absent when the order came from another api instance: only its view is known here. */
  | { live: true; generation: number; ids: OrderIds; view: OrderView | undefined; record: IdempotencyRecord | undefined }

/** The order a key names now, if it names one: the first generation not yet expired, or the next free one. */
export function slotOf(store: StateStore, userId: string | null, key: string, now: number, ttlMs: number): KeySlot {
  for (let generation = 0; ; generation++) {
    const ids = keyedIds(userId, key, generation)
    const record = store.get<IdempotencyRecord>(IDEMPOTENCY_SCOPE, ids.orderId)
    const view = store.get<OrderView>(ORDER_SCOPE, ids.orderId)
    const createdAt = record?.created_at ?? (view ? Date.parse(view.created_at) : undefined)
    if (createdAt === undefined) return { live: false, generation, ids }
    if (now - createdAt < ttlMs) return { live: true, generation, ids, view, record }
  }
}
