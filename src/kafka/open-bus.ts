import type { KafkaOptions } from './connection.js'
import { withClearErrors } from './explain.js'
import { PlatformaticBus } from './platformatic.js'
import type { MessageBus } from './port.js'

/** The bus every role and command uses: the one adapter, with TLS/SASL and readable setup errors. */
export function openBus(config: { brokers: string[]; kafka: KafkaOptions }, clientId: string): MessageBus {
  return withClearErrors(new PlatformaticBus(config.brokers, clientId, config.kafka), config.kafka)
}
