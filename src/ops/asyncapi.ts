import { Type, type TSchema } from '@sinclair/typebox'
import { stringify } from 'yaml'

import { MAX_MESSAGE_BYTES } from '../envelope.js'
import { orderSaga } from '../order-saga/saga.js'
import { waitsOf, type Saga } from '../saga/define.js'
import { commandTypes, eventTypes } from '../saga/derive.js'
import { DEFAULT_ORDER_LIMITS, orderSchema } from '../order-schema.js'
import { topicTable, type TopicKey } from '../topics.js'
import {
  CANCEL_ACCEPTED,
  CANCEL_IGNORED,
  CANCEL_REQUESTED,
  CONTROL_ANSWERS,
  DEADLINE_PASSED,
  DEADLINE_PASSED_REASON,
  PAUSE_ACCEPTED,
  PAUSE_IGNORED,
  PAUSE_REQUESTED,
  RESUME_ACCEPTED,
  RESUME_IGNORED,
  RESUME_REQUESTED,
  RETRY_ACCEPTED,
  RETRY_DUE,
  RETRY_REFUSED,
  RETRY_REQUESTED,
  SAGA_STATUSES,
  SAGA_STUCK,
  STEP_TIMED_OUT,
} from '../saga/decide.js'

// The AsyncAPI document is built from the definitions the code runs on: the topic table, the
// envelope's types, the order schema and the saga definition. `sagactl docs asyncapi` writes it to
// docs/asyncapi.yaml, and a test fails when the committed file differs from what this produces.

const id = (description: string) => Type.String({ minLength: 1, description })

/** What parseEnvelope insists on; the rest is what every sagactl producer adds. */
function envelopeSchema(kind: 'event' | 'command', type: string, payload: TSchema): TSchema {
  return Type.Object(
    {
      [`${kind}_type`]: Type.Literal(type),
      order_id: id('the order; also the record key'),
      saga_id: id("the order's saga"),
      message_id: id('unique per message; derived from the message handled (UUID v5 layout), so handling a message again yields the same id, and consumers skip an id they have seen'),
      payload,
      occurred_at: Type.Optional(Type.String({ format: 'date-time', description: "the producer's clock when it decided" })),
      causation_id: Type.Optional(Type.String({ description: 'the message_id of the message that caused this one; absent on order.created and on messages a timer caused' })),
    },
    { additionalProperties: true },
  )
}

const attempt = Type.Integer({ minimum: 1, description: 'the attempt of the step: 1, 2, 3 …' })
const failure = {
  reason: Type.String({ description: 'why, for a person' }),
  retryable: Type.Boolean({ description: 'false: compensate at once; true: retried while attempts remain' }),
}
const repeated = Type.Optional(Type.Boolean({ description: 'true when the participant had already carried out this command and answers again with the same id' }))

interface Described {
  kind: 'event' | 'command'
  topic: TopicKey
  sender: string
  receivers: string[]
  summary: string
  payload: TSchema
}

function participants(saga: Saga): Partial<Record<TopicKey, string>> {
  return Object.fromEntries(saga.steps.map((s) => [s.topic.key, s.role]))
}
const EVENT_READERS = ['orchestrator', 'api', 'notifier']

/** Every message type, with who sends it, where, and its payload: read off the saga definition. */
function messages(saga: Saga): Map<string, Described> {
  const PARTICIPANT = participants(saga)
  const out = new Map<string, Described>()
  const order = orderSchema(DEFAULT_ORDER_LIMITS)
  out.set(saga.started, { kind: 'event', topic: 'orderEvents', sender: 'api', receivers: EVENT_READERS, summary: 'An order was placed; the saga starts.', payload: order })
  for (const step of saga.steps) {
    const participant = PARTICIPANT[step.command.topic] ?? step.command.topic
    const effect = { [step.effectId]: Type.String({ description: `identifies the effect of ${step.name}` }) }
    out.set(step.command.type, { kind: 'command', topic: step.command.topic, sender: 'orchestrator', receivers: [participant], summary: `Step ${step.name}: asks ${participant} to act.`, payload: Type.Object({ ...order.properties, attempt }, { additionalProperties: true }) })
    out.set(step.succeeded, { kind: 'event', topic: 'orderEvents', sender: participant, receivers: EVENT_READERS, summary: `${step.name} succeeded.`, payload: Type.Object({ ...effect, attempt, repeated }, { additionalProperties: true }) })
    out.set(step.failed, { kind: 'event', topic: 'orderEvents', sender: participant, receivers: EVENT_READERS, summary: `${step.name} failed.`, payload: Type.Object({ ...failure, attempt }, { additionalProperties: true }) })
    const c = step.compensation
    if (!c) continue
    out.set(c.type, { kind: 'command', topic: c.topic, sender: 'orchestrator', receivers: [participant], summary: `Compensation of ${step.name}: undo its effect.`, payload: Type.Object({ ...effect, attempt }, { additionalProperties: true }) })
    out.set(c.confirmed, { kind: 'event', topic: 'orderEvents', sender: participant, receivers: EVENT_READERS, summary: `${step.name} was undone.`, payload: Type.Object({ ...effect, attempt, repeated }, { additionalProperties: true }) })
  }
  for (const w of waitsOf(saga)) {
    const onTimeout = w.onTimeout === 'cancel' ? 'the saga is compensated and cancelled' : 'the saga moves on without it'
    out.set(w.event, { kind: 'event', topic: 'orderEvents', sender: 'another system, or the api (POST /orders/{order_id}/events/{type})', receivers: EVENT_READERS, summary: `Awaited by step ${w.name}, keyed by the order; kept when it comes early. With none within ${w.timeoutMs} ms, ${onTimeout}.`, payload: Type.Object({}, { additionalProperties: true }) })
  }
  out.set(saga.completed, { kind: 'event', topic: 'orderEvents', sender: 'orchestrator', receivers: EVENT_READERS, summary: 'The final event of a saga whose steps all succeeded.', payload: Type.Object({}, { additionalProperties: true }) })
  out.set(saga.cancelled, { kind: 'event', topic: 'orderEvents', sender: 'orchestrator', receivers: EVENT_READERS, summary: 'The final event of a saga that failed for good, after its compensations.', payload: Type.Object({ reason: failure.reason }, { additionalProperties: true }) })
  out.set(SAGA_STUCK, { kind: 'event', topic: 'orderEvents', sender: 'orchestrator', receivers: EVENT_READERS, summary: 'Not final: a compensation ran out of attempts (SAGA_MAX_COMPENSATION_ATTEMPTS); `sagactl saga retry` resumes the saga.', payload: Type.Object({ step: Type.String(), attempt, reason: failure.reason }, { additionalProperties: true }) })
  // The orchestrator's timers go through its own input, so that every instance that ever held the partition acts on them in the same log order.
  const timerNote = 'Its due time is in `event_at` (ms), its timer in the `sagactl-timer` header; the orchestrator ignores one for a step that has moved on, and a copy by message_id.'
  out.set(RETRY_DUE, { kind: 'event', topic: 'orderEvents', sender: 'orchestrator', receivers: EVENT_READERS, summary: `The orchestrator's own timer: the delay after a retryable failure has passed, so the step is sent again. ${timerNote}`, payload: Type.Object({ step: Type.String(), attempt }, { additionalProperties: true }) })
  out.set(STEP_TIMED_OUT, { kind: 'event', topic: 'orderEvents', sender: 'orchestrator', receivers: EVENT_READERS, summary: `The orchestrator's own timer: a step or compensation did not answer within SAGA_STEP_TIMEOUT, so it is retried or the saga compensates. ${timerNote}`, payload: Type.Object({ step: Type.String(), attempt }, { additionalProperties: true }) })
  out.set(RETRY_REQUESTED, { kind: 'event', topic: 'orderEvents', sender: 'sagactl saga retry', receivers: EVENT_READERS, summary: 'An operator asks the orchestrator to resume a stuck saga with a fresh budget of attempts.', payload: Type.Object({ step: Type.String(), attempt }, { additionalProperties: true }) })
  out.set(CANCEL_REQUESTED, {
    kind: 'event',
    topic: 'orderEvents',
    sender: 'api (POST /orders/{order_id}/cancel), sagactl saga cancel',
    receivers: EVENT_READERS,
    summary: `Someone outside asks to stop the saga: the orchestrator stops retrying, undoes the step in flight and every done step, newest first, then publishes ${saga.cancelled} with the reason "cancelled by request: <reason>". Ignored (the orchestrator says so on sagactl.control) when the saga already ended or is already compensating.`,
    payload: Type.Object({ reason: Type.String({ description: 'why; "no reason given" when empty' }), requested_by: Type.String({ description: 'who asked, e.g. "api" or "sagactl saga cancel"' }) }, { additionalProperties: true }),
  })
  out.set(DEADLINE_PASSED, {
    kind: 'event',
    topic: 'orderEvents',
    sender: 'orchestrator',
    receivers: EVENT_READERS,
    summary: `The orchestrator's own timer: the saga's deadline (the definition's deadlineMs, or the order's earlier deadline_ms) passed before it ended, so it is cancelled as by a request, with the reason "${DEADLINE_PASSED_REASON}". ${timerNote}`,
    payload: Type.Object({ deadline_at: Type.Integer({ description: 'the deadline, ms since the epoch' }) }, { additionalProperties: true }),
  })
  const requester = Type.Object({ reason: Type.String({ description: 'why; "no reason given" when empty' }), requested_by: Type.String({ description: 'who asked, e.g. "api" or "sagactl saga pause"' }) }, { additionalProperties: true })
  out.set(PAUSE_REQUESTED, {
    kind: 'event',
    topic: 'orderEvents',
    sender: 'api (POST /orders/{order_id}/pause), sagactl saga pause',
    receivers: EVENT_READERS,
    summary: 'Someone outside asks to hold a running saga: it sends no new command and starts no retry until resumed; replies that arrive meanwhile are recorded, and a cancel still works. Ignored (said on sagactl.control) when the saga is not running or waiting for a retry.',
    payload: requester,
  })
  out.set(RESUME_REQUESTED, {
    kind: 'event',
    topic: 'orderEvents',
    sender: 'api (POST /orders/{order_id}/resume), sagactl saga resume',
    receivers: EVENT_READERS,
    summary: 'Carries a paused saga on from where it stands: a reply recorded while paused is acted on, and a step whose timeout passed while paused is handled as a timeout. Ignored (said on sagactl.control) when the saga is not paused.',
    payload: requester,
  })
  for (const [type, answer] of Object.entries(controlAnswers(saga))) out.set(type, answer)
  for (const participantTopic of Object.keys(PARTICIPANT) as TopicKey[]) {
    // set_chaos goes to every participant topic: one entry per topic, named after its receiver.
    out.set(`set_chaos.${PARTICIPANT[participantTopic]}`, {
      kind: 'command',
      topic: participantTopic,
      sender: 'sagactl chaos',
      receivers: [PARTICIPANT[participantTopic]!],
      summary: 'Test only: the next attempts fail (retryably) or are rejected; obeyed where SAGA_ALLOW_CHAOS is true.',
      payload: Type.Object({ fail: Type.Integer({ minimum: 0 }), reject: Type.Integer({ minimum: 0 }) }, { additionalProperties: true }),
    })
  }
  const known = new Set<string>([...eventTypes(saga), ...commandTypes(saga), ...CONTROL_ANSWERS])
  for (const name of out.keys()) if (!known.has(typeName(name))) throw new Error(`the saga definition names ${name}, which envelope.ts does not know`)
  for (const type of eventTypes(saga)) if (!out.has(type)) throw new Error(`event ${type} is in the saga's types but no step of the saga sends it`)
  return out
}

/**
 * The orchestrator's answer to each request from outside, on sagactl.control: a requester waits for
 * the one whose causation_id is its request's message_id. Where the saga exists, the answer says
 * where it stands.
 */
function controlAnswers(saga: Saga): Record<(typeof CONTROL_ANSWERS)[number], Described> {
  const where = {
    status: Type.Optional(Type.Union(SAGA_STATUSES.map((x) => Type.Literal(x)), { description: "the saga's status after the request; absent when the orchestrator has no saga for the order" })),
    step: Type.Optional(Type.String({ description: 'the step the saga is at' })),
    attempt: Type.Optional(attempt),
  }
  const why = Type.String({ description: 'why nothing was done, for a person' })
  const answer = (summary: string, receivers: string[], extra: Record<string, TSchema>): Described => ({
    kind: 'event',
    topic: 'control',
    sender: 'orchestrator',
    receivers,
    summary: `${summary} Its causation_id is the request's message_id.`,
    payload: Type.Object({ ...where, ...extra }, { additionalProperties: true }),
  })
  const retry = ['sagactl saga retry']
  const cancel = ['sagactl saga cancel']
  const asker = ['whoever asked']
  return {
    [RETRY_ACCEPTED]: answer(`${RETRY_REQUESTED} taken: the stuck saga's compensation is sent again with a fresh budget.`, retry, { attempts: Type.Integer({ minimum: 1, description: 'the attempts of the fresh budget' }) }),
    [RETRY_REFUSED]: answer(`${RETRY_REQUESTED} refused: the saga is not stuck (or unknown); nothing changed.`, retry, { reason: why }),
    [CANCEL_ACCEPTED]: answer(`${CANCEL_REQUESTED} taken: the saga stops and compensates, then ends in ${saga.cancelled}.`, cancel, { reason: Type.String({ description: `the reason ${saga.cancelled} will carry: "cancelled by request: <reason>"` }) }),
    [CANCEL_IGNORED]: answer(`${CANCEL_REQUESTED} ignored: the saga already ended, is already compensating or stuck, was already cancelled by request, or is unknown; nothing changed. The one of the cancel and the saga's last reply that is first in the log wins.`, cancel, { reason: why }),
    [PAUSE_ACCEPTED]: answer(`${PAUSE_REQUESTED} taken: the saga is paused.`, asker, { reason: Type.String({ description: 'the reason given with the request' }) }),
    [PAUSE_IGNORED]: answer(`${PAUSE_REQUESTED} ignored: the saga is not running or waiting for a retry (or is unknown); nothing changed.`, asker, { reason: why }),
    [RESUME_ACCEPTED]: answer(`${RESUME_REQUESTED} taken: the saga carries on from where it stands.`, asker, {}),
    [RESUME_IGNORED]: answer(`${RESUME_REQUESTED} ignored: the saga is not paused (or is unknown); nothing changed.`, asker, { reason: why }),
  }
}

function typeName(entry: string): string {
  return entry.startsWith('set_chaos.') ? 'set_chaos' : entry
}

const DeadLetter = Type.Object(
  {
    dead_letter_id: Type.String(),
    reason: Type.String({ description: 'why the role could not handle the record' }),
    role: Type.String({ description: 'the role that refused it' }),
    source: Type.Object({ topic: Type.String(), partition: Type.Integer(), offset: Type.String() }),
    key: Type.Union([Type.String(), Type.Null()]),
    headers: Type.Record(Type.String(), Type.String()),
    value_base64: Type.Union([Type.String(), Type.Null()], { description: 'the original bytes' }),
    dead_lettered_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: true },
)

function channelText(saga: Saga): Partial<Record<TopicKey, string>> {
  return {
    orderEvents: 'Every event of every saga. Consumers should read with isolation.level=read_committed.',
    ...Object.fromEntries(saga.steps.map((s) => [s.topic.key, `Commands for ${s.role}.`])),
    dlq: 'Whatever a role could not parse or handle, with the reason and the original bytes; `sagactl dlq replay` sends it back.',
    control: "Answers to requests from outside: the orchestrator's to saga.retry-requested, saga.cancel-requested, saga.pause-requested and saga.resume-requested, each caused by its request (causation_id). Participants' chaos.applied / chaos.refused and `sagactl dlq replay`'s dlq.replayed travel here too, and are not described in this document.",
  }
}

/** Drops TypeBox's symbol keys and undefined values: the document is plain JSON Schema. */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema))
}

export function asyncApiDocument(version: string, saga: Saga = orderSaga): Record<string, unknown> {
  const all = messages(saga)
  const TOPICS = topicTable(saga)
  const CHANNEL_TEXT = channelText(saga)
  const channels: Record<string, unknown> = {}
  const operations: Record<string, unknown> = {}
  const componentMessages: Record<string, unknown> = {}
  for (const key of Object.keys(CHANNEL_TEXT) as TopicKey[]) {
    const onChannel = [...all].filter(([, m]) => m.topic === key).map(([name]) => name)
    if (key === 'dlq') onChannel.push('dead_letter')
    channels[key] = {
      address: TOPICS[key].name,
      description: `${CHANNEL_TEXT[key]} ${TOPICS[key].partitions} partition(s); every record is keyed by order_id. With SAGA_TOPIC_PREFIX set, the topic is <prefix>${TOPICS[key].name}.`,
      messages: Object.fromEntries(onChannel.map((name) => [name, { $ref: `#/components/messages/${name}` }])),
      bindings: { kafka: { topic: TOPICS[key].name, partitions: TOPICS[key].partitions, bindingVersion: '0.5.0' } },
    }
  }
  for (const [name, m] of all) {
    const type = typeName(name)
    componentMessages[name] = {
      name: type,
      title: type,
      summary: m.summary,
      contentType: 'application/json',
      payload: plain(envelopeSchema(m.kind, type, m.payload)),
      bindings: { kafka: { key: { type: 'string', description: 'the order_id' }, bindingVersion: '0.5.0' } },
      'x-sender': m.sender,
      'x-receivers': m.receivers,
    }
    operations[`send_${name}`] = {
      action: 'send',
      channel: { $ref: `#/channels/${m.topic}` },
      summary: `${m.sender} sends ${type}.`,
      messages: [{ $ref: `#/channels/${m.topic}/messages/${name}` }],
    }
  }
  componentMessages.dead_letter = { name: 'dead_letter', title: 'dead letter', summary: 'A record some role could not handle.', contentType: 'application/json', payload: plain(DeadLetter), 'x-sender': 'any role', 'x-receivers': ['sagactl dlq'] }
  operations.send_dead_letter = { action: 'send', channel: { $ref: '#/channels/dlq' }, summary: 'Any role dead-letters a record it cannot handle.', messages: [{ $ref: '#/channels/dlq/messages/dead_letter' }] }
  return {
    asyncapi: '3.1.0',
    info: {
      title: 'sagactl',
      version,
      description: [
        'The topics and messages of the sagactl order saga. The application described is the whole system: each operation names the role that sends (x-sender) and the ones that read (x-receivers).',
        `Every message is a JSON envelope of at most ${MAX_MESSAGE_BYTES} bytes; one with event_type or command_type missing, or a payload of the wrong shape, is dead-lettered.`,
        'Generated by `sagactl docs asyncapi` from src/topics.ts, src/envelope.ts, src/order-schema.ts and src/order-saga/; do not edit by hand.',
      ].join('\n\n'),
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages: componentMessages },
  }
}

export function asyncApiYaml(version: string, saga: Saga = orderSaga): string {
  return stringify(asyncApiDocument(version, saga), { lineWidth: 0, aliasDuplicateObjects: false })
}
