import { Errors, Flags } from '@oclif/core'

import { openBus } from '../kafka/open-bus.js'
import type { MessageBus } from '../kafka/port.js'
import type { Saga } from '../saga/define.js'
import { SagaRequestNotDone } from '../services/orchestrator/ask.js'
import { NoChangelog } from '../services/orchestrator/saga-list.js'
import { SagaNotFound } from '../services/orchestrator/timeline.js'
import { changelogTopic, topicNames, type TopicNames } from '../topics.js'
import { configFrom, connectionFlags, sagaFrom } from './flags.js'

/** The flags of every command that asks the orchestrator something about one saga. */
export const sagaRequestFlags = {
  brokers: connectionFlags.brokers,
  saga: connectionFlags.saga,
  wait: Flags.boolean({ description: "wait for the orchestrator's answer (--no-wait: publish the request and return)", default: true, allowNo: true }),
  timeout: Flags.integer({ description: "seconds to wait for the orchestrator's answer", default: 30, min: 1 }),
}

export interface SagaRequestContext {
  bus: MessageBus
  topics: TopicNames
  changelog: string
  saga: Saga
  requestedBy: string
  wait: boolean
  timeoutMs: number
}

/**
 * Opens the bus, asks, closes it. What the operator can fix (an unknown id, a request the
 * orchestrator did not take and why, no changelog yet) ends the command with exit 1 and that
 * sentence; anything else is a fault and stays one.
 */
export async function askAboutSaga<T>(
  flags: { brokers?: string | undefined; saga?: string | undefined; wait: boolean; timeout: number },
  command: string,
  ask: (context: SagaRequestContext) => Promise<T>,
): Promise<T> {
  const saga = await sagaFrom(flags)
  const config = configFrom(flags)
  const bus = openBus(config, `sagactl-${command.replaceAll(' ', '-')}`)
  try {
    return await ask({ bus, topics: topicNames(config.topicPrefix, saga), changelog: changelogTopic(config.topicPrefix, 'orchestrator'), saga, requestedBy: `sagactl ${command}`, wait: flags.wait, timeoutMs: flags.timeout * 1000 })
  } catch (error) {
    if (error instanceof SagaNotFound || error instanceof SagaRequestNotDone || error instanceof NoChangelog) throw new Errors.CLIError(error.message, { exit: 1 })
    throw error
  } finally {
    await bus.close()
  }
}
