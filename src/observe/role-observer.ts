import type { RuntimeObserver } from './observer.js'
import type { RoleMetrics } from './metrics.js'
import type { Tracing } from './tracing.js'

/**
 * The runtime's observer for one role process: metrics when they are served, spans when tracing
 * is on. With neither, it only carries the trace context through (what the runtime does without one).
 */
export function roleObserver(metrics: RoleMetrics | undefined, tracing: Tracing | undefined): RuntimeObserver | undefined {
  if (!metrics && !tracing) return undefined
  return {
    handling({ record, trace }) {
      const started = metrics ? performance.now() : 0
      const span = tracing?.handling(record, trace)
      return {
        headers: span ? span.headers : trace,
        end(outcome, type) {
          metrics?.handled(record, type, outcome, (performance.now() - started) / 1000)
          span?.end({ 'sagactl.message_type': type ?? 'unparseable', 'sagactl.outcome': outcome }, outcome === 'dead-lettered' ? 'dead-lettered' : undefined)
        },
      }
    },
    sending(records, partition) {
      const started = metrics ? performance.now() : 0
      const sent = tracing?.sending(records, partition)
      return (error) => {
        metrics?.sent(records, (performance.now() - started) / 1000, error)
        sent?.(error)
      }
    },
  }
}
