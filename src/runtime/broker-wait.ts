import { KafkaSetupError } from '../kafka/explain.js'
import { BrokerLostError, type MessageBus } from '../kafka/port.js'

export interface BrokerWait {
  /** When the broker was last known to answer (or the wait began). */
  since: number
  lostAfterMs: number
  log: { warn(fields: object, msg: string): void }
  /** True once the role is stopping: the wait ends without an error. */
  stopped?: () => boolean
  /** What the log says it waits for, e.g. the bootstrap servers. */
  what?: string
}

/** The one sentence a role exits with when its broker stayed away too long. */
export function brokerLostSentence(downMs: number, lostAfterMs: number, what?: string): string {
  return `the Kafka broker${what ? ` at ${what}` : ''} has been unreachable for ${Math.round(downMs / 1000)} s, longer than SAGA_BROKER_LOST_AFTER (${Math.round(lostAfterMs / 1000)} s)`
}

/**
 * Asks the broker for metadata, with backoff (250 ms doubling to 5 s), until it answers; with
 * `work`, until `work` succeeds (joining a group again needs more than an answer: a coordinator).
 * Past the deadline it throws a BrokerLostError whose message is the sentence a role exits with; a
 * broker that answers with a refusal (a KafkaSetupError) ends the wait at once.
 */
export async function waitForBroker(bus: Pick<MessageBus, 'reach'>, wait: BrokerWait, work: () => Promise<void> = () => bus.reach()): Promise<void> {
  for (let attempt = 0; !wait.stopped?.(); attempt++) {
    let failure: unknown
    try {
      await work()
      return
    } catch (error) {
      // A broker that answers and refuses us (credentials, certificates, ACLs) will not change its
      // mind by waiting: that is a setup error, said at once.
      if (error instanceof KafkaSetupError) throw error
      failure = error
    }
    const down = Date.now() - wait.since
    if (down > wait.lostAfterMs) {
      throw new BrokerLostError(brokerLostSentence(down, wait.lostAfterMs, wait.what))
    }
    if (attempt % 10 === 0) wait.log.warn({ down_ms: down, gives_up_in_ms: wait.lostAfterMs - down, err: failure }, `waiting for the Kafka broker${wait.what ? ` at ${wait.what}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(attempt, 5))))
  }
}
