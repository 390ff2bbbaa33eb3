#!/usr/bin/env node
import { nodeTooOld } from './node-version.js'

const tooOld = nodeTooOld(process.versions.node)
if (tooOld) {
  process.stderr.write(`${tooOld}\n`)
  process.exit(1)
}
// The saga is loaded once, as the commands are imported: `--saga` has to be known before that.
const sagaAt = process.argv.findIndex((a) => a === '--saga' || a.startsWith('--saga='))
if (sagaAt !== -1) {
  const value = process.argv[sagaAt] === '--saga' ? process.argv[sagaAt + 1] : process.argv[sagaAt].slice('--saga='.length)
  if (!value || value.startsWith('-')) {
    process.stderr.write('--saga needs the path of a built JavaScript module whose default export is defineSaga(...)\n')
    process.exit(2)
  }
  process.env.SAGA_DEFINITION_MODULE = value
}
if (process.env.SAGA_DEFINITION_MODULE) {
  try {
    await import('../dist/saga/active.js')
  } catch (error) {
    // One sentence that names the module and the field; a stack trace helps nobody here.
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(2)
  }
}
// Loaded only after the check: on an older Node it would fail inside a dependency, with a stack trace.
const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
