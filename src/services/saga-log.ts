import { parseEnvelope, type Message } from '../envelope.js'
import type { MessageBus } from '../kafka/port.js'
import type { TopicNames } from '../topics.js'

/** The topics that together hold every saga's history: its events and the commands it sent. */
export function sagaTopics(topics: TopicNames): string[] {
  return [topics.orderEvents, topics.inventoryCommands, topics.paymentCommands]
}

/** Every well-formed message on the saga topics, up to their current ends. */
export async function readSagaMessages(bus: MessageBus, topics: TopicNames): Promise<Message[]> {
  const messages: Message[] = []
  for (const topic of sagaTopics(topics)) {
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
