import path from 'node:path'
import { pathToFileURL } from 'node:url'

import { orderSaga } from './order-saga/saga.js'
import { defineSaga, type Saga } from './saga/define.js'

/**
 * The saga this process runs: the order saga, unless `--saga` (SAGA_DEFINITION_MODULE) names a
 * built JavaScript module whose default export is another `defineSaga(...)`. Every process of one
 * system must be given the same: each role stamps the definition's hash on what it writes and
 * refuses messages of another.
 */
export async function loadSaga(modulePath: string | undefined): Promise<Saga> {
  if (!modulePath) return orderSaga
  let loaded: { default?: unknown }
  try {
    loaded = (await import(pathToFileURL(path.resolve(modulePath)).href)) as { default?: unknown }
  } catch (error) {
    throw new Error(`--saga / SAGA_DEFINITION_MODULE: cannot load "${modulePath}": ${(error as Error).message.split('\n')[0]}`)
  }
  const saga = loaded.default as Saga | undefined
  if (!saga || typeof saga !== 'object' || !Array.isArray(saga.steps)) throw new Error(`--saga / SAGA_DEFINITION_MODULE: "${modulePath}" has no default export made by defineSaga`)
  try {
    return defineSaga(saga)
  } catch (error) {
    throw new Error(`--saga / SAGA_DEFINITION_MODULE: "${modulePath}": ${(error as Error).message}`)
  }
}
