#!/usr/bin/env node
import { nodeTooOld } from './node-version.js'

if (nodeTooOld(process.versions.node)) {
  // sagactl runs on a current Node fetched from the npm registry; this older one only launches it.
  const { launch } = await import('./launch.js')
  await launch()
} else {
  // Loaded only after the check: on an older Node it would fail inside a dependency, with a stack trace.
  const { execute } = await import('@oclif/core')
  await execute({ dir: import.meta.url })
}
