#!/usr/bin/env node
import { nodeTooOld } from './node-version.js'

const tooOld = nodeTooOld(process.versions.node)
if (tooOld) {
  process.stderr.write(`${tooOld}\n`)
  process.exit(1)
}
// Loaded only after the check: on an older Node it would fail inside a dependency, with a stack trace.
const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
