import { parseEnvelope, type Message } from '../../envelope.js'
import type { MessageBus } from '../../kafka/port.js'
import type { Saga } from '../../saga/define.js'
import type { TopicNames } from '../../topics.js'

/** The topics that together hold every saga's history: its events and the commands it sent. */
export function sagaTopics(topics: TopicNames, saga: Saga): string[] {
  return [topics.orderEvents, ...saga.steps.map((s) => topics[s.topic.key])]
}

/** Every well-formed message on the saga topics, up to their current ends. */
export async function readSagaMessages(bus: MessageBus, topics: TopicNames, saga: Saga): Promise<Message[]> {
  const messages: Message[] = []
  for (const topic of sagaTopics(topics, saga)) {
    await bus.read({
      topic,
      handler: (record) => {
        const parsed = parseEnvelope(record.value)
        if (parsed.ok) messages.push(parsed.message)
      },
    })
  }
  return messages
}
