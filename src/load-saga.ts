import path from 'node:path'
import { pathToFileURL } from 'node:url'

import { orderSaga } from './order-saga/saga.js'
import { defineSaga, defineVersions, type Saga } from './saga/define.js'

/**
 * The saga this process runs: the order saga, unless `--saga` (SAGA_DEFINITION_MODULE) names a
 * built JavaScript module whose default export is another `defineSaga(...)`, or a list of them:
 * the versions it runs, oldest first (defineVersions). Every process of one system must be given
 * the same: each role stamps a version's hash on what it writes and refuses messages of another.
 */
export async function loadSaga(modulePath: string | undefined): Promise<Saga> {
  if (!modulePath) return orderSaga
  let loaded: { default?: unknown }
  try {
    loaded = (await import(pathToFileURL(path.resolve(modulePath)).href)) as { default?: unknown }
  } catch (error) {
    throw new Error(`--saga / SAGA_DEFINITION_MODULE: cannot load "${modulePath}": ${(error as Error).message.split('\n')[0]}`)
  }
  const exported = loaded.default as Saga | Saga[] | undefined
  const listed = Array.isArray(exported) ? exported : [exported]
  if (listed.length === 0 || listed.some((saga) => !saga || typeof saga !== 'object' || !Array.isArray(saga.steps))) {
    throw new Error(`--saga / SAGA_DEFINITION_MODULE: "${modulePath}" has no default export made by defineSaga (or a list of them, oldest version first)`)
  }
  try {
    return Array.isArray(exported) ? defineVersions(...listed as Saga[]) : (exported as Saga).versions ? (exported as Saga) : defineSaga(exported as Saga)
  } catch (error) {
    throw new Error(`--saga / SAGA_DEFINITION_MODULE: "${modulePath}": ${(error as Error).message}`)
  }
}
