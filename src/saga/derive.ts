import { createHash } from 'node:crypto'

import { SAGA_LEVEL_EVENTS, waitsOf, type ParticipantRole, type RoleName, type Saga, type SagaStep } from './define.js'

// Everything that used to restate the saga's steps, read off its definition instead. Pure.

export const CHAOS_COMMAND = 'set_chaos'

/** Events on order.events, in the saga's order: start, each step's replies, the awaited events, the two final events, then the saga-level ones (stuck, retry requested…). */
export function eventTypes(saga: Saga): string[] {
  return [saga.started, ...saga.steps.flatMap((s) => [s.succeeded, s.failed, s.compensation.confirmed]), ...waitsOf(saga).map((w) => w.event), saga.completed, saga.cancelled, ...SAGA_LEVEL_EVENTS]
}

/** Commands on the participants' topics: each step's command and compensation, then chaos. */
export function commandTypes(saga: Saga): string[] {
  return [...saga.steps.flatMap((s) => [s.command.type, s.compensation.type]), CHAOS_COMMAND]
}

export function participantRoles(saga: Saga): ParticipantRole[] {
  return saga.steps.map((s) => s.role)
}

/** Every role `sagactl start` runs for this saga: one per process, participants in step order. */
export function roleNames(saga: Saga): RoleName[] {
  return ['api', 'orchestrator', ...participantRoles(saga), 'notifier']
}

/** Every participant obeys set_chaos on its own topic. */
export function chaosTargets(saga: Saga): ParticipantRole[] {
  return participantRoles(saga)
}

export function stepOfRole(saga: Saga, role: string): SagaStep | undefined {
  return saga.steps.find((s) => s.role === role)
}

/** The publications a completed saga goes through, as [from, to] message types. */
export function sagaHops(saga: Saga): [string, string][] {
  const hops: [string, string][] = []
  let previous = saga.started
  for (const step of saga.steps) {
    hops.push([previous, step.command.type], [step.command.type, step.succeeded])
    previous = step.succeeded
  }
  hops.push([previous, saga.completed])
  return hops
}

/** Order-level kinds (stuck is every saga's) around the steps' own, in the order verify reports them. */
export function breachKinds(saga: Saga): string[] {
  return [
    'unfinished',
    'stuck',
    'multiple_final_events',
    ...saga.steps.map((s) => s.verify.double.kind),
    ...saga.steps.flatMap((s) => (s.verify.withoutPrevious ? [s.verify.withoutPrevious.kind] : [])),
    ...saga.steps.map((s) => s.verify.completedWithout.kind),
    'cancelled_with_effect_standing',
    'compensation_applied_twice',
    'message_id_conflict',
  ]
}

/**
 * The saga's shape, hashed: its steps, roles, topics and message types, what routes a message and
 * names state. Every role stamps it on what it writes and refuses a message of another shape.
 * Code and retry policies are left out: changing them is safe while sagas are in flight. So are
 * partition counts: they are a deployment's setting (SAGA_PARTITIONS), checked against the topics
 * at start, and a command run without the setting must not stamp another shape.
 */
/** The versions a deployment runs, oldest first; a saga of one version is its own. */
export function versionsOf(saga: Saga): Saga[] {
  return saga.versions ?? [saga]
}

/** The version a message stamped with `hash` (its saga_definition) belongs to; undefined if none here. */
export function versionByHash(saga: Saga, hash: string | undefined): Saga | undefined {
  return hash === undefined ? undefined : versionsOf(saga).find((v) => definitionHash(v) === hash)
}

/** A version's name: its own, or its definition hash. */
export function versionName(saga: Saga): string {
  return saga.version ?? definitionHash(saga)
}

/** The hash of the saga's shape; of a deployment of several versions, its newest's (what new sagas start on). */
export function definitionHash(saga: Saga): string {
  if (saga.versions) return definitionHash(saga.versions.at(-1)!)
  const shape = {
    started: saga.started,
    completed: saga.completed,
    cancelled: saga.cancelled,
    steps: saga.steps.map((s) => ({ name: s.name, role: s.role, topic: s.topic.name, command: s.command, succeeded: s.succeeded, failed: s.failed, compensation: s.compensation, effectId: s.effectId })),
    // Only when the flow is not each step in turn, so the hash of every straight-line saga stays as it was.
    ...(saga.stages ? { stages: saga.stages.map((st) => (st.kind === 'step' ? st.step.name : st.kind === 'parallel' ? { parallel: st.name, branches: st.branches.map((b) => b.name) } : { await: st.wait })) } : {}),
  }
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 12)
}
