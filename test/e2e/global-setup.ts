import type { TestProject } from 'vitest/node'

import { brokerAnswers, freePort, startLocalKafka, type LocalKafka } from '../../src/broker/local-kafka.js'

declare module 'vitest' {
  export interface ProvidedContext {
    brokers: string
  }
}

let broker: LocalKafka | undefined

/**
 * A real broker for every end-to-end test: SAGA_TEST_BROKERS if it answers, otherwise a fresh
 * single-node Kafka on free ports. Never skipped: no broker is a failure.
 */
export async function setup(project: TestProject): Promise<void> {
  const given = process.env.SAGA_TEST_BROKERS
  if (given) {
    if (!(await brokerAnswers(given, 10_000))) throw new Error(`SAGA_TEST_BROKERS=${given} does not answer`)
    project.provide('brokers', given)
    return
  }
  broker = await startLocalKafka({ port: await freePort(), controllerPort: await freePort(), log: (line) => console.log(`[kafka] ${line}`) })
  project.provide('brokers', broker.brokers)
}

export async function teardown(): Promise<void> {
  await broker?.stop()
}
