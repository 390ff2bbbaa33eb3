import { readFileSync } from 'node:fs'

import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'

import { SAGA_LIST_STATUSES, type SagaFilter, type SagaList } from '../../services/orchestrator/saga-list.js'
import { SagaNotFound, type SagaReport } from '../../services/orchestrator/timeline.js'
import type { Saga } from '../../saga/define.js'
import { swimlanesOf, type Swimlanes } from './swimlanes.js'

export interface UiDeps {
  listSagas(filter: SagaFilter): Promise<SagaList>
  loadSaga(id: string): Promise<SagaReport>
  /** The saga the reports are of: its roles are the lanes. */
  saga: Saga
  now(): number
}

// The page is two plain files, read once: nothing to build, nothing for the browser to fetch elsewhere.
const STATIC_DIR = new URL('../../../ui/', import.meta.url)
const asset = (name: string): string => readFileSync(new URL(name, STATIC_DIR), 'utf8')

const ListQuery = Type.Object({
  status: Type.Optional(Type.String({ pattern: `^(${SAGA_LIST_STATUSES.join('|')})(,(${SAGA_LIST_STATUSES.join('|')}))*$` })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
})

/** Read-only: every route is a GET, and nothing here writes to Kafka. */
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

  return app
}
