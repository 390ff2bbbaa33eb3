import type { Tracing } from './tracing.js'

type Env = Record<string, string | undefined>

/** Tracing is on when an OTLP endpoint is set (and the SDK is not disabled by OTEL_SDK_DISABLED). */
export function tracingEnabled(env: Env = process.env): boolean {
  if (/^true$/i.test(env.OTEL_SDK_DISABLED ?? '')) return false
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

/** The SDK is imported here, on demand: a process with tracing off never loads it. */
export async function loadTracing(service: string, instance?: string, env: Env = process.env): Promise<Tracing | undefined> {
  if (!tracingEnabled(env)) return undefined
  const { startTracing } = await import('./tracing.js')
  return startTracing(service, instance)
}
