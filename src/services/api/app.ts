import { readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'

import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { Type, type TSchema } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifySchemaCompiler, type FastifyServerOptions, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify'

import { DEFAULT_IDEMPOTENCY_TTL_MS } from '../../config.js'
import { event, type Outgoing } from '../../envelope.js'
import { DEFAULT_ORDER_LIMITS, orderPayload, orderSchema, problemOf, type Order, type OrderLimits } from '../../order-schema.js'
import { traceHeadersOf, type TraceHeaders } from '../../observe/observer.js'
import type { Decision, DecideContext, StateStore } from '../../runtime/role.js'
import { IDEMPOTENCY_SCOPE, requestHash, slotOf, type IdempotencyRecord, type OrderIds } from './idempotency.js'
import { answerMethodNotAllowed } from './method-not-allowed.js'
import { ORDER_SCOPE, type OrderView } from './orders.js'
import { OutsideEventAccepted, OutsideEventBody, publishOutsideEvent, type OutsideEventAnswer } from './outside-event.js'
import { requestAccepted, requestBody, RequestConflict, requestFromOutside, SAGA_REQUEST_KINDS, SAGA_REQUESTS, type RequestAnswer, type SagaRequestKind } from './saga-requests.js'

// A client that retries a POST with the same key gets the same order, not a second one.
const IdempotencyHeaders = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'a string of 1 to 200 characters' })) })

const Accepted = Type.Object({ order_id: Type.String(), saga_id: Type.String(), status: Type.Literal('pending') }, { description: 'the order is placed, or it repeats the order its Idempotency-Key names' })
const ErrorBody = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() })
const errorBody = (description: string) => Type.Object(ErrorBody.properties, { description })
// Open to more fields: the contract lets the view grow, and a closed schema would make Fastify drop them.
const OrderViewBody = Type.Object(
  {
    order_id: Type.String(),
    saga_id: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('completed'), Type.Literal('cancelled')]),
    last_event: Type.String(),
    reason: Type.Optional(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: true, description: "the order's status, kept current from order.events" },
)
const Health = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]), role: Type.Literal('api'), reason: Type.Optional(Type.String({ description: 'why it is degraded' })) })

// Each response lists every status the route answers with: the OpenAPI document at /docs is built from these.
const placeOrderSchema = (limits: OrderLimits) => ({
  summary: 'Place an order',
  description:
    'Publishes one order.created. With an Idempotency-Key, a repeated request gets the same order and publishes nothing more. An optional deadline_ms is carried in order.created: if the saga has not ended that many milliseconds after it started, it is cancelled with the reason "deadline passed" (what was done is undone, newest first); the saga definition\'s deadlineMs, when earlier, wins.',
  tags: ['orders'],
  body: orderSchema(limits),
  headers: IdempotencyHeaders,
  response: {
    202: Accepted,
    400: errorBody('the body is not JSON or breaks the order schema, or the Idempotency-Key is empty or too long; the message names the field'),
    413: errorBody('the body is over 256 KiB'),
    415: errorBody('the content type is neither JSON nor text'),
    422: errorBody('the Idempotency-Key already names an order placed with a different body'),
  },
})
const readOrderSchema = {
  summary: "An order's status",
  tags: ['orders'],
  params: Type.Object({ order_id: Type.String() }),
  response: { 200: OrderViewBody, 404: errorBody('no order with this id') },
}
const sagaRequestSchema = <K extends SagaRequestKind>(kind: K) => ({
  summary: SAGA_REQUESTS[kind].summary,
  description: `${SAGA_REQUESTS[kind].description} With an Idempotency-Key, a repeated request publishes the same message, taken once.`,
  tags: ['orders'],
  params: Type.Object({ order_id: Type.String() }),
  headers: IdempotencyHeaders,
  body: requestBody(kind),
  response: {
    202: requestAccepted(kind),
    400: errorBody('the body is not an object with an optional reason string, or the Idempotency-Key is empty or too long; the message names the field'),
    404: errorBody('no order with this id'),
    409: RequestConflict,
  },
})
const healthSchema = { summary: 'Up, and the broker answers', tags: ['health'], response: { 200: Health, 503: Health } }

type TypedApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface ApiDeps {
  /** Runs `work` in the api's transaction; its messages go through the outbox, with `trace` as their trace context. */
  submit(work: (store: StateStore, ctx: DecideContext) => Decision, trace?: TraceHeaders): Decision
  readOrder(orderId: string): OrderView | undefined
  /** Up and in touch with the broker; otherwise why not. */
  health(): Promise<{ ok: true } | { ok: false; reason: string }>
  /** Prometheus text for GET /metrics; absent: no such route. */
  metrics?(): Promise<{ contentType: string; text: string }>
  /** A span for a request; absent (tracing off): the caller's trace context is passed on as it came. */
  traceRequest?(name: string, incoming: TraceHeaders | undefined, attributes: Record<string, string | number>): { headers: TraceHeaders; end(attributes: Record<string, string | number>, error?: string): void }
}

export interface ApiSettings {
  limits: OrderLimits
  idempotencyTtlMs: number
  /** The event types the saga's wait steps take (POST /orders/:id/events/:type). */
  awaitedEvents?: readonly string[]
}

export const DEFAULT_API_SETTINGS: ApiSettings = { limits: DEFAULT_ORDER_LIMITS, idempotencyTtlMs: DEFAULT_IDEMPOTENCY_TTL_MS }

const outsideEventSchema = {
  summary: 'Send an event a saga waits for',
  description:
    "Publishes the event on order.events, keyed by the order, for a saga whose flow has an awaitEvent step for this type: a waiting saga moves on, one that has not reached the step keeps it, one past the step ignores it. Repeats (same type, same Idempotency-Key or none) publish the same message, taken once.",
  tags: ['orders'],
  params: Type.Object({ order_id: Type.String(), type: Type.String() }),
  headers: IdempotencyHeaders,
  body: OutsideEventBody,
  response: {
    202: OutsideEventAccepted,
    400: errorBody('no wait step of the saga takes this event type; the message names the ones it takes'),
    404: errorBody('no order with this id'),
    409: RequestConflict,
  },
}

export type Placed =
  | { outcome: 'created' | 'repeated'; view: OrderView; messages: Outgoing[] }
  /** The key already names an order with another body: `view` is that order, nothing is written. */
  | { outcome: 'conflict'; view: OrderView; messages: [] }

/**
 * The order created by a POST: the view row, the key's record and the event, written together or
 * not at all. Without a key the ids are fresh; with one they are the key's (see keyedIds).
 */
export function createOrder(order: Order, store: StateStore, ctx: DecideContext, idempotency?: { key: string; ttlMs: number }): Placed {
  const payload = orderPayload(order)
  const hash = idempotency ? requestHash(payload) : ''
  let ids: OrderIds
  let generation = 0
  if (idempotency) {
    const slot = slotOf(store, payload.user_id, idempotency.key, ctx.now, idempotency.ttlMs)
    if (slot.live) {
      const view = slot.view ?? viewOf(slot.ids, slot.record!.created_at)
      // Without a record the order came from another instance's log: its body is unknown here.
      if (slot.record && slot.record.request_hash !== hash) return { outcome: 'conflict', view, messages: [] }
      return { outcome: 'repeated', view, messages: [] }
    }
    ids = slot.ids
    generation = slot.generation
  } else {
    ids = { orderId: ctx.newId(), sagaId: ctx.newId(), messageId: ctx.newId() }
  }
  const view = viewOf(ids, ctx.now)
  store.put(ORDER_SCOPE, ids.orderId, view)
  if (idempotency) {
    const record: IdempotencyRecord = { user_id: payload.user_id, key: idempotency.key, generation, request_hash: hash, order_id: ids.orderId, saga_id: ids.sagaId, created_at: ctx.now }
    store.put(IDEMPOTENCY_SCOPE, ids.orderId, record)
  }
  return { outcome: 'created', view, messages: [{ topic: 'orderEvents', envelope: event('order.created', { order_id: ids.orderId, saga_id: ids.sagaId, payload }, ctx.now, ids.messageId) }] }
}

function viewOf(ids: OrderIds, now: number): OrderView {
  const at = new Date(now).toISOString()
  return { order_id: ids.orderId, saga_id: ids.sagaId, status: 'pending', last_event: 'order.created', created_at: at, updated_at: at }
}

/**
 * Fastify validates every part with TypeBox's compiled check and our wording, so a refused POST
 * reads like the orchestrator's dead letter for the same order: one schema, one set of messages.
 */
const typeboxValidator: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const problem = problemOf(schema)
  return (value) => {
    const found = problem(value, httpPart ?? 'body')
    return found ? { error: new Error(found) } : { value }
  }
}

export function buildApp(deps: ApiDeps, settings: ApiSettings = DEFAULT_API_SETTINGS, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({ ...options, bodyLimit: 256 * 1024 }).withTypeProvider<TypeBoxTypeProvider>()
  // No coercion anywhere: "999" is not an amount, and the client should hear so.
  app.setValidatorCompiler(typeboxValidator)

  app.setErrorHandler((error: { statusCode?: number; message: string }, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
    void reply.status(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message: statusCode >= 500 ? 'internal error' : error.message })
  })

  answerMethodNotAllowed(app)

  void app.register(swagger, {
    openapi: {
      info: {
        title: 'sagactl api',
        version: VERSION,
        description:
          'Places orders and answers their status. Every error body is {"statusCode", "error", "message"}. A method that a path here does not serve (`TRACE /orders`, `DELETE /healthz`) is answered 405 Method Not Allowed with an `Allow` header naming the methods it serves (components.responses.MethodNotAllowed); a path not listed here, 404.',
      },
      tags: [{ name: 'orders' }, { name: 'health' }],
      components: {
        responses: {
          MethodNotAllowed: {
            description: 'the path exists but does not serve this method',
            headers: { Allow: { description: 'the methods the path serves, e.g. "GET, HEAD"', schema: { type: 'string' } } },
            content: { 'application/json': { schema: ErrorBody } },
          },
        },
      },
    },
  })
  void app.register(swaggerUi, { routePrefix: '/docs' })
  // Routes live in a plugin so that they register after swagger's onRoute hook, which documents them.
  void app.register(async (scope) => routes(scope.withTypeProvider<TypeBoxTypeProvider>(), deps, settings))
  return app
}

function routes(app: TypedApp, deps: ApiDeps, settings: ApiSettings): void {
  app.post('/orders', { schema: placeOrderSchema(settings.limits) }, async (request, reply) => {
    const key = request.headers['idempotency-key']
    const incoming = traceHeadersOf(request.headers)
    const span = deps.traceRequest?.('POST /orders', incoming, { 'http.request.method': 'POST', 'http.route': '/orders' })
    let placed: Placed | undefined
    deps.submit((store, ctx) => {
      placed = createOrder(request.body, store, ctx, key === undefined ? undefined : { key, ttlMs: settings.idempotencyTtlMs })
      return { messages: placed.messages }
    }, span ? span.headers : incoming)
    const { view } = placed!
    span?.end({ 'http.response.status_code': placed!.outcome === 'conflict' ? 422 : 202, 'sagactl.order_id': view.order_id, 'sagactl.outcome': placed!.outcome })
    if (placed!.outcome === 'conflict') {
      return reply.status(422).send({
        statusCode: 422,
        error: 'Unprocessable Entity',
        message: `Idempotency-Key "${key}" already names order ${view.order_id}, placed with a different request body; repeat that body to get that order, or use a new key for a new order`,
      })
    }
    return reply.status(202).send({ order_id: view.order_id, saga_id: view.saga_id, status: 'pending' as const })
  })

  app.get('/orders/:order_id', { schema: readOrderSchema }, async (request, reply) => {
    const view = deps.readOrder(request.params.order_id)
    if (!view) return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no order ${request.params.order_id}` })
    return view
  })

  for (const kind of SAGA_REQUEST_KINDS) sagaRequestRoute(app, deps, kind)

  app.post('/orders/:order_id/events/:type', { schema: outsideEventSchema, preValidation: async (request) => void (request.body ??= {}) }, async (request, reply) => {
    const { order_id: id, type } = request.params
    let answer: OutsideEventAnswer | undefined
    deps.submit((_store, ctx) => {
      answer = publishOutsideEvent(deps.readOrder(id), type, request.body as Record<string, unknown>, settings.awaitedEvents ?? [], ctx, request.headers['idempotency-key'])
      return { messages: answer.outcome === 'published' ? answer.messages : [] }
    })
    const a = answer!
    if (a.outcome === 'not-awaited') {
      const takes = a.awaited.length > 0 ? `it waits for ${a.awaited.join(', ')}` : 'it waits for no outside event'
      return reply.status(400).send({ statusCode: 400, error: 'Bad Request', message: `no step of the saga waits for "${type}": ${takes}` })
    }
    if (a.outcome === 'unknown') return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no order ${id}` })
    if (a.outcome === 'ended') return reply.status(409).send({ statusCode: 409, error: 'Conflict', message: `order ${id} has already ended: ${a.status}; the event changes nothing`, status: a.status })
    return reply.status(202).send({ order_id: a.view.order_id, saga_id: a.view.saga_id, type, message_id: a.messageId })
  })

  const metrics = deps.metrics
  if (metrics) {
    app.get('/metrics', async (_request, reply) => {
      const { contentType, text } = await metrics()
      return reply.type(contentType).send(text)
    })
  }

  app.get('/healthz', { schema: healthSchema }, async (_request, reply) => {
    const health = await deps.health()
    return health.ok ? reply.status(200).send({ status: 'ok', role: 'api' }) : reply.status(503).send({ status: 'degraded', role: 'api', reason: health.reason })
  })
}

// An empty POST asks with no reason: the body schema then sees an empty object.
function sagaRequestRoute<K extends SagaRequestKind>(app: TypedApp, deps: ApiDeps, kind: K): void {
  app.post(`/orders/:order_id/${kind}`, { schema: sagaRequestSchema(kind), preValidation: async (request) => void (request.body ??= {}) }, async (request, reply) => {
    const id = request.params.order_id
    let answer: RequestAnswer | undefined
    deps.submit((_store, ctx) => {
      answer = requestFromOutside(kind, deps.readOrder(id), request.body?.reason, ctx, request.headers['idempotency-key'])
      return { messages: answer.outcome === 'requested' ? answer.messages : [] }
    })
    const a = answer!
    if (a.outcome === 'unknown') return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no order ${id}` })
    if (a.outcome === 'ended') return reply.status(409).send({ statusCode: 409, error: 'Conflict', message: `order ${id} has already ended: ${a.status}; nothing changed`, status: a.status })
    return reply.status(202).send({ order_id: a.view.order_id, saga_id: a.view.saga_id, status: `${kind}_requested` as const, request_id: a.requestId })
  })
}
