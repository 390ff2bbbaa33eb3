import { parseEnvelope, type Envelope } from '../../envelope.js'
import type { MessageBus } from '../../kafka/port.js'
import type { TopicNames } from '../../topics.js'

export interface OrchestratorAnswer {
  accepted: boolean
  payload: Record<string, unknown>
}

/**
 * Publishes a request for the orchestrator on order.events, keyed by its order, and waits for the
 * answer it writes on the control topic (causation_id = the request). Undefined when none comes
 * within timeoutMs. `saga retry` and `saga cancel` both ask this way.
 */
export async function askOrchestrator(bus: MessageBus, topics: TopicNames, request: Envelope, acceptedType: string, timeoutMs: number): Promise<OrchestratorAnswer | undefined> {
  let answer: (reply: OrchestratorAnswer) => void = () => {}
  const answered = new Promise<OrchestratorAnswer>((resolve) => (answer = resolve))
  // Follow the control topic from its end as it was before the request went out, so the answer cannot be missed.
  const sub = await bus.tail({
    topic: topics.control,
    fromOffsets: await bus.endOffsets(topics.control),
    handler: (record) => {
      const parsed = parseEnvelope(record.value)
      if (parsed.ok && parsed.message.causation_id === request.message_id) answer({ accepted: parsed.message.type === acceptedType, payload: parsed.message.payload })
    },
  })
  let timer: NodeJS.Timeout | undefined
  try {
    await bus.publish([{ topic: topics.orderEvents, key: request.order_id, value: JSON.stringify(request) }])
    return await Promise.race([answered, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)))])
  } finally {
    clearTimeout(timer)
    await sub.close()
  }
}
