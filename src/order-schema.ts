import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'

// The one definition of an order. The HTTP route, the orchestrator's check of order.created and
// the api's read model all compile it with the same limits, so the ways in cannot drift apart.

export interface OrderLimits {
  maxAmount: number
  maxQty: number
}

// Amounts are minor units: 100,000,000 is a million in a two-decimal currency. Both bounds sit far
// below 2^53, past which a JSON number is no longer an exact integer and money would be rounded.
export const DEFAULT_ORDER_LIMITS: Readonly<OrderLimits> = { maxAmount: 100_000_000, maxQty: 10_000 }

// Small enough that the largest order they admit still fits in one message (MAX_MESSAGE_BYTES):
// an order the API accepts can never be dead-lettered downstream as oversize.
export const MAX_ITEMS = 100
export const MAX_SKU_LENGTH = 200
export const MAX_USER_ID_LENGTH = 200
// An order's own deadline: 30 days is past any checkout, and keeps a mistyped unit (seconds for
// milliseconds, or an epoch time) from passing as a deadline nobody meant.
export const MAX_DEADLINE_MS = 30 * 24 * 60 * 60 * 1000

/** Each `description` is what a refusal says the field must be, and what the API documents. */
export function orderSchema(limits: OrderLimits) {
  return Type.Object(
    {
      user_id: Type.Optional(Type.Union([Type.String({ maxLength: MAX_USER_ID_LENGTH }), Type.Null()], { description: `a string of at most ${MAX_USER_ID_LENGTH} characters, or null` })),
      items: Type.Array(
        Type.Object(
          {
            sku: Type.String({ minLength: 1, maxLength: MAX_SKU_LENGTH, description: `a string of 1 to ${MAX_SKU_LENGTH} characters` }),
            qty: Type.Integer({ minimum: 1, maximum: limits.maxQty, description: `an integer from 1 to ${limits.maxQty}` }),
          },
          { additionalProperties: false, description: 'an item {"sku", "qty"}' },
        ),
        { maxItems: MAX_ITEMS, description: `an array of at most ${MAX_ITEMS} items {"sku", "qty"}` },
      ),
      amount: Type.Integer({ minimum: 1, maximum: limits.maxAmount, description: `an integer from 1 to ${limits.maxAmount} (minor units)` }),
      deadline_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DEADLINE_MS, description: `an integer from 1 to ${MAX_DEADLINE_MS} (milliseconds, at most 30 days)` })),
    },
    { additionalProperties: false, description: 'an order {"user_id", "items", "amount", "deadline_ms"}' },
  )
}

export type OrderSchema = ReturnType<typeof orderSchema>
export type Order = Static<OrderSchema>

/**
 * The payload of order.created, in a fixed field order: also the canonical form of a request body.
 * deadline_ms is there only when asked for, so an order without one hashes as it did before it existed.
 */
export function orderPayload(order: Order): { user_id: string | null; items: { sku: string; qty: number }[]; amount: number; deadline_ms?: number } {
  return { user_id: order.user_id ?? null, items: order.items.map((i) => ({ sku: i.sku, qty: i.qty })), amount: order.amount, ...(order.deadline_ms !== undefined ? { deadline_ms: order.deadline_ms } : {}) }
}

/** Says what is wrong with a value, naming the field under `root` ("body", "payload"); undefined when nothing is. */
export type Problem = (value: unknown, root: string) => string | undefined

/** Compiles `schema` once; a refusal reports the first problem only, so a huge bad input costs little. */
export function problemOf(schema: TSchema): Problem {
  const compiled = TypeCompiler.Compile(schema)
  return (value, root) => {
    if (compiled.Check(value)) return undefined
    const error = compiled.Errors(value).First()
    return error ? describe(error, value, root) : `${root} is invalid`
  }
}

export function orderProblem(limits: OrderLimits): Problem {
  return problemOf(orderSchema(limits))
}

function describe(error: ValueError, root: unknown, rootName: string): string {
  const field = fieldName(error.path, root, rootName)
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return `${field} is not a known field`
  const expected = error.schema.description ?? error.message
  if (error.type === ValueErrorType.ObjectRequiredProperty) return `${field} is missing; it must be ${expected}`
  return `${field} must be ${expected}, got ${preview(error.value)}`
}

/** "/items/0/qty" → "body.items[0].qty": indices where the value holds an array, names elsewhere. */
function fieldName(pointer: string, root: unknown, rootName: string): string {
  let name = rootName
  let at: unknown = root
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    name += Array.isArray(at) ? `[${segment}]` : /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`
    at = typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[segment] : undefined
  }
  return name
}

function preview(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}
