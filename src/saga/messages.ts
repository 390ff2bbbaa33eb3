// The saga's own message types: on order.events (keyed by the order, so ordered with the saga's
// replies) and the orchestrator's answers on sagactl.control. Every saga has them, whatever its steps.

/** Published when a compensation ran out of attempts: not final, but the saga waits for an operator. */
export const SAGA_STUCK = 'saga.stuck'
/** Published by `sagactl saga retry` on order.events, keyed like the saga, so it is ordered with its replies. */
export const RETRY_REQUESTED = 'saga.retry-requested'
/**
 * The orchestrator's own timers, due: a retry after a failure, a step that did not answer in
 * time, or the saga's deadline. Each is published to the order's partition of order.events and
 * acted on when the orchestrator reads it back, in log order with the replies (docs/commit-path.md
 * says why): a zombie's timer is fenced with the rest of its transaction.
 */
export const RETRY_DUE = 'saga.retry-due'
export const STEP_TIMED_OUT = 'saga.step-timed-out'
/** Payload: deadline_at. The saga is cancelled as by a request, with the reason DEADLINE_PASSED_REASON. */
export const DEADLINE_PASSED = 'saga.deadline-passed'
/**
 * Someone outside (the api's POST /orders/:id/cancel, `sagactl saga cancel`) asks to stop the
 * saga: on order.events, keyed by the order, so it is ordered with the saga's replies. What decides
 * a race is the saga's last reply, not its final event: a cancel read before that reply stops the
 * saga; one read after it (the saga has completed, its order.completed maybe not yet written)
 * changes nothing. Payload: reason, requested_by.
 */
export const CANCEL_REQUESTED = 'saga.cancel-requested'
/**
 * Someone outside asks to hold the saga (payload: reason, requested_by): no new command and no
 * retry until a resume; replies that arrive meanwhile are recorded. A cancel still works.
 */
export const PAUSE_REQUESTED = 'saga.pause-requested'
/** Carries a paused saga on from where it stands. Payload: requested_by, reason (optional). */
export const RESUME_REQUESTED = 'saga.resume-requested'
/**
 * Events of the orchestrator about the saga as a whole, on order.events, for every saga whatever
 * its steps: a step module neither declares nor may take them.
 */
export const SAGA_LEVEL_EVENTS = [SAGA_STUCK, RETRY_REQUESTED, RETRY_DUE, STEP_TIMED_OUT, CANCEL_REQUESTED, DEADLINE_PASSED, PAUSE_REQUESTED, RESUME_REQUESTED] as const

/** The orchestrator's answers to a request, on sagactl.control, caused by the request. */
export const RETRY_ACCEPTED = 'saga.retry-accepted'
export const RETRY_REFUSED = 'saga.retry-refused'
export const CANCEL_ACCEPTED = 'saga.cancel-accepted'
export const CANCEL_IGNORED = 'saga.cancel-ignored'
export const PAUSE_ACCEPTED = 'saga.pause-accepted'
export const PAUSE_IGNORED = 'saga.pause-ignored'
export const RESUME_ACCEPTED = 'saga.resume-accepted'
export const RESUME_IGNORED = 'saga.resume-ignored'
export const CONTROL_ANSWERS = [RETRY_ACCEPTED, RETRY_REFUSED, CANCEL_ACCEPTED, CANCEL_IGNORED, PAUSE_ACCEPTED, PAUSE_IGNORED, RESUME_ACCEPTED, RESUME_IGNORED] as const

/** The reason order.cancelled carries for a saga cancelled from outside. */
export const cancelledByRequest = (reason: string): string => `cancelled by request: ${reason}`
/** The reason order.cancelled carries for a saga whose deadline passed. */
export const DEADLINE_PASSED_REASON = 'deadline passed'
