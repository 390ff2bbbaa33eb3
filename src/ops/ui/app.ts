import { readFileSync } from 'node:fs'

import { Type, type TSchema } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchemaCompiler, type FastifyServerOptions } from 'fastify'

import { SAGA_LIST_STATUSES, type SagaFilter, type SagaList } from '../../services/orchestrator/saga-list.js'
import { SagaNotFound, type SagaReport } from '../../services/orchestrator/timeline.js'
import type { Saga } from '../../saga/define.js'
import { problemOf } from '../../order-schema.js'
import { swimlanesOf, type Swimlanes } from './swimlanes.js'
import { actionAccess, refusalOf, TOKEN_HEADER, type ActionAccess } from './access.js'
import { ActionFailed, type ActionRecord, type UiActions } from './actions.js'

export interface UiDeps {
  listSagas(filter: SagaFilter): Promise<SagaList>
  loadSaga(id: string): Promise<SagaReport>
  /** The saga the reports are of: its roles are the lanes. */
  saga: Saga
  now(): number
  /** What the action routes call: the CLI's own functions (uiActions). */
  actions: UiActions
  /** The address the server is bound to, and SAGA_UI_TOKEN: together they decide whether actions are allowed. */
  host: string
  token?: string | undefined
}

// The page is two plain files, read once: nothing to build, nothing for the browser to fetch elsewhere.
const STATIC_DIR = new URL('../../../ui/', import.meta.url)
const asset = (name: string): string => readFileSync(new URL(name, STATIC_DIR), 'utf8')

const ListQuery = Type.Object({
  status: Type.Optional(Type.String({ pattern: `^(${SAGA_LIST_STATUSES.join('|')})(,(${SAGA_LIST_STATUSES.join('|')}))*$` })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
})

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) })
const ReasonBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500, description: 'a string of up to 500 characters' })) }, { additionalProperties: false })
const EmptyBody = Type.Object({}, { additionalProperties: false })

// A POST's body is checked as it came, with the api's wording: no coercion, an unknown field refused.
const exactBody: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const problem = problemOf(schema)
  return (value: unknown) => {
    const found = problem(value, httpPart ?? 'body')
    return found ? { error: new Error(found) } : { value }
  }
}

/**
 * The page's server: the saga list and timelines (GETs, read from the broker), and the actions
 * (POSTs), each the function its CLI command calls. Whether actions are allowed is decided once,
 * from the bound address and SAGA_UI_TOKEN (access.ts), and told to the page at GET /api/actions.
 */
export function buildUiApp(deps: UiDeps, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>()
  const page = asset('index.html')
  const script = asset('timeline.js')

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))
  app.get('/timeline.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(script))

  app.get('/api/sagas', { schema: { querystring: ListQuery } }, async (request) => {
    const { status, limit } = request.query
    return deps.listSagas({ ...(status ? { statuses: status.split(',') } : {}), limit })
  })

  app.get('/api/sagas/:id', { schema: { params: Type.Object({ id: Type.String({ minLength: 1 }) }) } }, async (request, reply): Promise<{ report: SagaReport; lanes: Swimlanes } | undefined> => {
    try {
      const report = await deps.loadSaga(request.params.id)
      return { report, lanes: swimlanesOf(report, deps.now(), deps.saga) }
    } catch (error) {
      if (error instanceof SagaNotFound) return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: error.message })
      throw error
    }
  })

  const access: ActionAccess = actionAccess(deps.host, deps.token)
  app.get('/api/actions', async () => access)
  app.get('/api/dead-letters', async () => ({ dead_letters: await deps.actions.deadLetters() }))

  // Checked before the body is read: a refused caller learns nothing about its input.
  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers[TOKEN_HEADER]
    const refusal = refusalOf(access, deps.token, { token: Array.isArray(header) ? header[0] : header, hostHeader: request.headers.host, origin: request.headers.origin })
    if (refusal) return reply.status(refusal.statusCode).send({ statusCode: refusal.statusCode, error: refusal.statusCode === 401 ? 'Unauthorized' : 'Forbidden', message: refusal.message })
  }
  // Its own context, so the exact validator covers the actions and the list keeps its query coercion.
  void app.register(async (actions) => {
    actions.setValidatorCompiler(exactBody)
    actions.addHook('onRequest', guard)
    actions.addHook('preValidation', async (request) => void (request.body ??= {}))
    const action = (path: string, body: TSchema, run: (id: string, body: Record<string, unknown>) => Promise<ActionRecord>) =>
      actions.post(path, { schema: { params: IdParams, body } }, async (request, reply) => {
        try {
          return await run((request.params as { id: string }).id, request.body as Record<string, unknown>)
        } catch (error) {
          if (error instanceof ActionFailed) return reply.status(error.statusCode).send({ statusCode: error.statusCode, error: STATUS_TEXT[error.statusCode], message: error.message, wrote: error.wrote })
          throw error
        }
      })
    const reason = (body: Record<string, unknown>) => (typeof body.reason === 'string' ? body.reason : '')
    action('/api/sagas/:id/cancel', ReasonBody, (id, body) => deps.actions.cancel(id, reason(body)))
    action('/api/sagas/:id/pause', ReasonBody, (id, body) => deps.actions.pause(id, reason(body)))
    action('/api/sagas/:id/resume', ReasonBody, (id, body) => deps.actions.resume(id, reason(body)))
    action('/api/sagas/:id/retry', EmptyBody, (id) => deps.actions.retry(id))
    action('/api/dead-letters/:id/replay', EmptyBody, (id) => deps.actions.replay(id))
  })

  return app
}

const STATUS_TEXT = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 504: 'Gateway Timeout' } as const
