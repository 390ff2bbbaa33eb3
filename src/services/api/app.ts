import { Type, type Static } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'

import { event, type Outgoing } from '../../envelope.js'
import { derivedIds } from '../../runtime/ids.js'
import type { Decision, DecideContext, StateStore } from '../../runtime/role.js'
import { ORDER_SCOPE, type OrderView } from './orders.js'

export const OrderRequest = Type.Object(
  {
    user_id: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
    items: Type.Array(Type.Object({ sku: Type.String({ minLength: 1, maxLength: 200 }), qty: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), { maxItems: 1000 }),
    amount: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)
export type OrderRequest = Static<typeof OrderRequest>

// A client that retries a POST with the same key gets the same order, not a second one.
const IdempotencyHeaders = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) })

const Accepted = Type.Object({ order_id: Type.String(), saga_id: Type.String(), status: Type.Literal('pending') })
const ErrorBody = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() })

export interface ApiDeps {
  /** Runs `work` in the api's transaction; its messages go through the outbox. */
  submit(work: (store: StateStore, ctx: DecideContext) => Decision): Decision
  readOrder(orderId: string): OrderView | undefined
  healthy(): Promise<boolean>
}

/** Ids for an order. With an idempotency key they are derived from it, so a retried request is the same order. */
export function orderIds(idempotencyKey: string | undefined, newId: () => string): { orderId: string; sagaId: string; messageId: string } {
  const next = idempotencyKey ? derivedIds(`idempotency-key:${idempotencyKey}`) : newId
  return { orderId: next(), sagaId: next(), messageId: next() }
}

/** The order created by a POST: the view row and the event, written together or not at all. */
export function createOrder(body: OrderRequest, store: StateStore, ctx: DecideContext, idempotencyKey?: string): { view: OrderView; messages: Outgoing[] } {
  const { orderId, sagaId, messageId } = orderIds(idempotencyKey, ctx.newId)
  const existing = store.get<OrderView>(ORDER_SCOPE, orderId)
  if (existing) return { view: existing, messages: [] }
  const at = new Date(ctx.now).toISOString()
  const view: OrderView = { order_id: orderId, saga_id: sagaId, status: 'pending', last_event: 'order.created', created_at: at, updated_at: at }
  store.put(ORDER_SCOPE, orderId, view)
  const payload = { user_id: body.user_id ?? null, items: body.items, amount: body.amount }
  return { view, messages: [{ topic: 'orderEvents', envelope: event('order.created', { order_id: orderId, saga_id: sagaId, payload }, ctx.now, messageId) }] }
}

export function buildApp(deps: ApiDeps, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({
    ...options,
    // No coercion: "999" is not an amount, and the client should hear so.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    bodyLimit: 256 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setErrorHandler((error: { statusCode?: number; validation?: unknown; message: string }, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
    void reply.status(statusCode).send({
      statusCode,
      error: statusCode >= 500 ? 'Internal Server Error' : 'Bad Request',
      message: statusCode >= 500 ? 'internal error' : error.message,
    })
  })

  app.post('/orders', { schema: { body: OrderRequest, headers: IdempotencyHeaders, response: { 202: Accepted, 400: ErrorBody } } }, async (request, reply) => {
    let view: OrderView | undefined
    deps.submit((store, ctx) => {
      const created = createOrder(request.body, store, ctx, request.headers['idempotency-key'])
      view = created.view
      return { messages: created.messages }
    })
    return reply.status(202).send({ order_id: view!.order_id, saga_id: view!.saga_id, status: 'pending' as const })
  })

  app.get('/orders/:order_id', { schema: { params: Type.Object({ order_id: Type.String() }) } }, async (request, reply) => {
    const view = deps.readOrder(request.params.order_id)
    if (!view) return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no order ${request.params.order_id}` })
    return view
  })

  app.get('/healthz', async (_request, reply) => {
    const ok = await deps.healthy()
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', role: 'api' })
  })

  return app
}
