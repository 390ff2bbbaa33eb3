import path from 'node:path'

import { Errors, Flags } from '@oclif/core'

import { ConfigError, loadConfig, type Config } from '../config.js'
import { loadSaga } from '../load-saga.js'
import type { Saga } from '../saga/define.js'

export const connectionFlags = {
  brokers: Flags.string({ description: 'Kafka bootstrap servers, host:port[,…] (overrides KAFKA_BROKERS)' }),
  'data-dir': Flags.string({ description: "directory of each role's SQLite file (overrides SAGA_DATA_DIR)" }),
  saga: Flags.string({ description: 'your saga: a built JavaScript module whose default export is defineSaga(...) (overrides SAGA_DEFINITION_MODULE); every role of one system runs the same one' }),
}

/** Environment first, then flags on top; a bad value stops the command with the variable's name. */
export function configFrom(flags: { brokers?: string; 'data-dir'?: string; port?: number; 'instance-id'?: string; 'metrics-port'?: number }, defaults: { allowChaos?: boolean } = {}): Config {
  const env = { ...process.env }
  if (flags.brokers) env.KAFKA_BROKERS = flags.brokers
  if (flags['data-dir']) env.SAGA_DATA_DIR = flags['data-dir']
  if (flags.port !== undefined) env.PORT = String(flags.port)
  if (flags['instance-id']) env.SAGA_INSTANCE_ID = flags['instance-id']
  if (flags['metrics-port'] !== undefined) env.SAGA_METRICS_PORT = String(flags['metrics-port'])
  try {
    return loadConfig(env, defaults)
  } catch (error) {
    if (error instanceof ConfigError) throw new Errors.CLIError(error.message, { exit: 2 })
    throw error
  }
}

/**
 * The saga this command runs: `--saga`, else SAGA_DEFINITION_MODULE, else the order saga. Loaded
 * once, here at the edge, and passed down. A module that fails ends the command with one sentence.
 */
export async function sagaFrom(flags: { saga?: string | undefined }): Promise<Saga> {
  // The roles a command starts (dev, soak, bench) inherit it.
  if (flags.saga) process.env.SAGA_DEFINITION_MODULE = path.resolve(flags.saga)
  try {
    return await loadSaga(process.env.SAGA_DEFINITION_MODULE)
  } catch (error) {
    throw new Errors.CLIError((error as Error).message, { exit: 2 })
  }
}
