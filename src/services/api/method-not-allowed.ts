import type { FastifyInstance } from 'fastify'

/** The methods one route path serves, and a test of a request path against it. */
interface ServedPath {
  matches: RegExp
  methods: Set<string>
}

/**
 * A method a known path does not serve is answered 405 with `Allow` (RFC 9110 §15.5.6), not 404:
 * the client learns the path is right and which methods it takes. Fastify's router only says "not
 * found", so every route is noted as it is added and a 404 is checked against them. This runs at
 * onRequest, before the body is read: a 405 never depends on the body or its content type. Call it
 * on the root instance before any route or plugin is registered.
 */
export function answerMethodNotAllowed(app: FastifyInstance): void {
  const served = new Map<string, ServedPath>()
  app.addHook('onRoute', (route) => {
    const entry = served.get(route.url) ?? { matches: patternOf(route.url), methods: new Set<string>() }
    for (const method of [route.method].flat()) entry.methods.add(method.toUpperCase())
    served.set(route.url, entry)
  })
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return
    const path = request.url.split('?', 1)[0]!
    const allow = allowedAt(served, path)
    if (allow.length === 0) return
    return reply
      .status(405)
      .header('allow', allow.join(', '))
      .send({ statusCode: 405, error: 'Method Not Allowed', message: `${path} does not serve ${request.method}; it serves ${allow.join(', ')}` })
  })
}

function allowedAt(served: Map<string, ServedPath>, path: string): string[] {
  const methods = new Set<string>()
  for (const entry of served.values()) if (entry.matches.test(path)) for (const m of entry.methods) methods.add(m)
  return [...methods].sort()
}

/** Fastify's route syntax as the router reads it here: `:name` is one segment, a trailing `*` the rest. */
function patternOf(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*$)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${source}$`)
}
