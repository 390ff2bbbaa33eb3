import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

/** JSON lines by default (machines read them); pretty on a terminal or when SAGA_LOG_PRETTY is set. */
export function createLogger(name: string, env: Record<string, string | undefined> = process.env, { stderr = false } = {}): Logger {
  const fd = stderr ? 2 : 1
  const stream = stderr ? process.stderr : process.stdout
  const level = env.LOG_LEVEL || 'info'
  const wantPretty = env.SAGA_LOG_PRETTY ? /^(1|true|yes)$/i.test(env.SAGA_LOG_PRETTY) : stream.isTTY === true
  if (!wantPretty) return pino({ name, level, base: { role: name } }, pino.destination({ fd, sync: true }))
  return pino(
    { name, level, base: undefined },
    pretty({ sync: true, destination: fd, colorize: env.NO_COLOR ? false : stream.isTTY === true || env.FORCE_COLOR === '1', translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name,role,saga_id,event,step,outcome,status,component', singleLine: true }),
  )
}
