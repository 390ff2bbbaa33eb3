import { DEFAULT_ORDER_LIMITS, MAX_DEADLINE_MS, MAX_ITEMS, MAX_SKU_LENGTH, MAX_USER_ID_LENGTH } from '../src/order-schema.js'

// One table of orders, fed to POST /orders and, as order.created payloads, to the orchestrator and
// the api's read model: each way in must refuse the same orders, naming the same field.

const L = DEFAULT_ORDER_LIMITS
const item = { sku: 'book', qty: 1 }
const order = (over: Record<string, unknown>): Record<string, unknown> => ({ user_id: 'u1', items: [item], amount: 999, ...over })
const without = (field: string): Record<string, unknown> => {
  const { [field]: _gone, ...rest } = order({})
  return rest
}

/** [case, the order, the field its refusal must name ('' for the whole order)], with DEFAULT_ORDER_LIMITS. */
export const REFUSED: [string, unknown, string][] = [
  ['amount missing', without('amount'), 'amount'],
  ['amount as a string', order({ amount: '999' }), 'amount'],
  ['amount zero', order({ amount: 0 }), 'amount'],
  ['amount negative', order({ amount: -5 }), 'amount'],
  ['amount fractional', order({ amount: 2.5 }), 'amount'],
  ['amount 1e308', order({ amount: 1e308 }), 'amount'],
  ['amount 2^53, past exact integers', order({ amount: 2 ** 53 }), 'amount'],
  ['amount one past SAGA_MAX_AMOUNT', order({ amount: L.maxAmount + 1 }), 'amount'],
  ['amount null', order({ amount: null }), 'amount'],
  ['qty 1e300', order({ items: [{ sku: 'a', qty: 1e300 }] }), 'items[0].qty'],
  ['qty zero', order({ items: [{ sku: 'a', qty: 0 }] }), 'items[0].qty'],
  ['qty one past SAGA_MAX_QTY', order({ items: [{ sku: 'a', qty: L.maxQty + 1 }] }), 'items[0].qty'],
  ['qty fractional', order({ items: [item, { sku: 'b', qty: 1.5 }] }), 'items[1].qty'],
  ['qty as a string', order({ items: [{ sku: 'a', qty: '1' }] }), 'items[0].qty'],
  ['items missing', without('items'), 'items'],
  ['items not an array', order({ items: 'book' }), 'items'],
  [`more than ${MAX_ITEMS} items`, order({ items: Array.from({ length: MAX_ITEMS + 1 }, () => item) }), 'items'],
  ['an item that is not an object', order({ items: ['book'] }), 'items[0]'],
  ['an item without sku', order({ items: [{ qty: 1 }] }), 'items[0].sku'],
  ['an empty sku', order({ items: [{ sku: '', qty: 1 }] }), 'items[0].sku'],
  [`a sku over ${MAX_SKU_LENGTH} characters`, order({ items: [{ sku: 'x'.repeat(MAX_SKU_LENGTH + 1), qty: 1 }] }), 'items[0].sku'],
  ['an item with an unknown field', order({ items: [{ sku: 'a', qty: 1, price: 3 }] }), 'items[0].price'],
  ['user_id a number', order({ user_id: 7 }), 'user_id'],
  [`user_id over ${MAX_USER_ID_LENGTH} characters`, order({ user_id: 'u'.repeat(MAX_USER_ID_LENGTH + 1) }), 'user_id'],
  ['deadline_ms zero', order({ deadline_ms: 0 }), 'deadline_ms'],
  ['deadline_ms negative', order({ deadline_ms: -1000 }), 'deadline_ms'],
  ['deadline_ms fractional', order({ deadline_ms: 1.5 }), 'deadline_ms'],
  ['deadline_ms as a string', order({ deadline_ms: '5000' }), 'deadline_ms'],
  ['deadline_ms null', order({ deadline_ms: null }), 'deadline_ms'],
  ['deadline_ms one past 30 days', order({ deadline_ms: MAX_DEADLINE_MS + 1 }), 'deadline_ms'],
  ['deadline_ms an epoch time, not a duration', order({ deadline_ms: Date.UTC(2030, 0, 1) }), 'deadline_ms'],
  ['an unknown field', order({ discount: 100 }), 'discount'],
  ['an array instead of an order', [order({})], ''],
]

/** Orders at the edges of every bound, all to be accepted. */
export const ACCEPTED: [string, Record<string, unknown>][] = [
  ['the smallest order', { items: [], amount: 1 }],
  ['user_id null', order({ user_id: null })],
  ['amount exactly SAGA_MAX_AMOUNT', order({ amount: L.maxAmount })],
  ['qty exactly SAGA_MAX_QTY', order({ items: [{ sku: 'a', qty: L.maxQty }] })],
  [`exactly ${MAX_ITEMS} items`, order({ items: Array.from({ length: MAX_ITEMS }, (_, i) => ({ sku: `s${i}`, qty: 1 })) })],
  ['deadline_ms 1', order({ deadline_ms: 1 })],
  ['deadline_ms exactly 30 days', order({ deadline_ms: MAX_DEADLINE_MS })],
  ['the longest sku and user_id', order({ user_id: 'u'.repeat(MAX_USER_ID_LENGTH), items: [{ sku: 'x'.repeat(MAX_SKU_LENGTH), qty: 1 }] })],
]

/** The message a refusal starts with: the field under `root` ("body", "payload"), then what it must be. */
export function naming(root: string, field: string): RegExp {
  const name = field === '' ? root : `${root}.${field}`
  return new RegExp(`^${name.replace(/[.[\]]/g, '\\$&')} (must be|is missing|is not a known field)`)
}
