import type { Envelope, Outgoing } from '../envelope.js'
import type { Decision } from '../runtime/role.js'
import type { Saga } from '../saga/define.js'
import { CONTROL_ANSWERS, type SagaState } from '../saga/decide.js'

// Apart from the metrics that count them: reading a decision is the saga's vocabulary (steps,
// compensations, control answers), the counters are prom-client's.

/** Each answer the orchestrator writes on the control topic: which request it answers, and how. */
export const ANSWERS = new Map(
  CONTROL_ANSWERS.map((type) => {
    const [, request = type, answer = type] = /^saga\.(\w+)-(\w+)$/.exec(type) ?? []
    return [type as string, { request, answer }]
  }),
)

export interface SagaCountOf {
  retry?: string
  compensation?: string
  finished?: { outcome: string; seconds: number }
  request?: { request: string; answer: string }
}

/** What counts a saga decision; RoleMetrics is one. */
export interface SagaCounter {
  countSaga(what: SagaCountOf): void
}

export type SagaCount = (metrics: SagaCounter) => void

function typeOfCommand(envelope: Envelope): string | undefined {
  return envelope.command_type
}

/** What one saga decision means for the counters: retries, compensations, answers to requests, a finished saga. */
export function sagaCounts(saga: Saga, decision: Decision, steps: Map<string, string>, compensations: Map<string, string>): SagaCount[] {
  const counts: SagaCount[] = []
  for (const out of decision.messages ?? ([] as Outgoing[])) {
    const command = typeOfCommand(out.envelope)
    const attempt = out.envelope.payload.attempt
    if (command && steps.has(command) && typeof attempt === 'number' && attempt > 1) {
      const step = steps.get(command)!
      counts.push((m) => m.countSaga({ retry: step }))
    }
    if (command && compensations.has(command)) {
      const step = compensations.get(command)!
      counts.push((m) => m.countSaga({ compensation: step }))
    }
    const event = out.envelope.event_type
    const answered = out.topic === 'control' && event !== undefined ? ANSWERS.get(event) : undefined
    if (answered) counts.push((m) => m.countSaga({ request: answered }))
    if (event === saga.completed || event === saga.cancelled) {
      const state = (decision as { state?: SagaState }).state
      const seconds = state && state.finished_at !== undefined ? (state.finished_at - state.started_at) / 1000 : 0
      const outcome = event === saga.completed ? 'completed' : 'cancelled'
      counts.push((m) => m.countSaga({ finished: { outcome, seconds } }))
    }
  }
  return counts
}
