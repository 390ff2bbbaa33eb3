import { pino, type DestinationStream, type Logger } from 'pino'
import pretty from 'pino-pretty'

/**
 * JSON lines by default (machines read them); pretty on a terminal or when SAGA_LOG_PRETTY is set.
 * `destination` replaces stdout/stderr (tests read the lines).
 */
export function createLogger(name: string, env: Record<string, string | undefined> = process.env, { stderr = false, destination }: { stderr?: boolean; destination?: DestinationStream } = {}): Logger {
  const fd = stderr ? 2 : 1
  const stream = stderr ? process.stderr : process.stdout
  const level = env.LOG_LEVEL || 'info'
  const wantPretty = env.SAGA_LOG_PRETTY ? /^(1|true|yes)$/i.test(env.SAGA_LOG_PRETTY) : destination === undefined && stream.isTTY === true
  if (!wantPretty) {
    // pino writes a line's own fields after its bindings without merging them: a `role` given again
    // would be a second "role" key, which JSON readers resolve differently (first or last wins).
    return pino({ name, level, base: { role: name }, formatters: { log: withoutRole } }, destination ?? pino.destination({ fd, sync: true }))
  }
  return pino(
    { name, level, base: undefined },
    pretty({ sync: true, destination: destination ?? fd, colorize: env.NO_COLOR ? false : stream.isTTY === true || env.FORCE_COLOR === '1', translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name,role,saga_id,event,step,outcome,status,component', singleLine: true }),
  )
}

function withoutRole(fields: Record<string, unknown>): Record<string, unknown> {
  if (!('role' in fields)) return fields
  const { role: _bound, ...rest } = fields
  return rest
}
