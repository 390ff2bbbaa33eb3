import path from 'node:path'
import { pathToFileURL } from 'node:url'

import { orderSaga } from '../services/orchestrator/order-saga.js'
import { defineSaga, type Saga } from './define.js'

/**
 * The saga this process runs: the order saga, unless SAGA_DEFINITION_MODULE names a built
 * JavaScript module whose default export is another `defineSaga(...)`. For tests and extensions
 * only: it is not part of the contract, and every process of one system must be given the same.
 */
export async function loadSaga(modulePath: string | undefined): Promise<Saga> {
  if (!modulePath) return orderSaga
  let loaded: { default?: unknown }
  try {
    loaded = (await import(pathToFileURL(path.resolve(modulePath)).href)) as { default?: unknown }
  } catch (error) {
    throw new Error(`SAGA_DEFINITION_MODULE: cannot load "${modulePath}": ${(error as Error).message}`)
  }
  const saga = loaded.default as Saga | undefined
  if (!saga || typeof saga !== 'object' || !Array.isArray(saga.steps)) throw new Error(`SAGA_DEFINITION_MODULE: "${modulePath}" has no default export made by defineSaga`)
  return defineSaga(saga)
}

export const activeSaga: Saga = await loadSaga(process.env.SAGA_DEFINITION_MODULE)
