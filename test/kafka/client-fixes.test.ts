import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

const PATCH = fileURLToPath(new URL('../../scripts/patch-platformatic-kafka.mjs', import.meta.url))
const require = createRequire(import.meta.url)
const installedConsumer = path.join(path.dirname(require.resolve('@platformatic/kafka')), 'clients', 'consumer', 'consumer.js')

/** A project folder whose node_modules holds a @platformatic/kafka of the given version and consumer source. */
function fakeInstall(version: string, consumer: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-patch-'))
  const pkg = path.join(root, 'node_modules', '@platformatic', 'kafka')
  fs.mkdirSync(path.join(pkg, 'dist', 'clients', 'consumer'), { recursive: true })
  fs.writeFileSync(path.join(root, 'package.json'), '{"name":"fake","type":"module"}')
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@platformatic/kafka', version, main: 'dist/index.js' }))
  fs.writeFileSync(path.join(pkg, 'dist', 'index.js'), '')
  fs.writeFileSync(path.join(pkg, 'dist', 'clients', 'consumer', 'consumer.js'), consumer)
  return root
}

const runPatch = (cwd: string) => spawnSync(process.execPath, [PATCH], { cwd, encoding: 'utf8' })
const consumerOf = (root: string) => fs.readFileSync(path.join(root, 'node_modules', '@platformatic', 'kafka', 'dist', 'clients', 'consumer', 'consumer.js'), 'utf8')

describe('the installed Kafka client', () => {
  it('carries our read_committed filter (scripts/patch-platformatic-kafka.mjs), not the one the client ships', () => {
    const consumer = fs.readFileSync(installedConsumer, 'utf8')
    expect(consumer).toContain('#filterUncommittedMessages(response) { /* sagactl: read_committed filter */')
    expect(consumer).not.toContain('abortedRanges.set(aborted.producerId, [aborted.firstOffset, -1n]);')
  })
})

describe('scripts/patch-platformatic-kafka.mjs', () => {
  const shipped = `class Consumer {\n    #filterUncommittedMessages(response) {\n        // the client's own\n    }\n    #getRejoinError(error) {\n    }\n}\n`

  it('given the pinned version, when run twice, then it replaces the filter once and leaves the rest', () => {
    const root = fakeInstall('2.12.1', shipped)
    expect(runPatch(root).status).toBe(0)
    const once = consumerOf(root)
    expect(once).toContain('/* sagactl: read_committed filter */')
    expect(once).not.toContain("the client's own")
    expect(once).toContain('#getRejoinError(error) {')
    expect(runPatch(root).status).toBe(0)
    expect(consumerOf(root)).toBe(once)
  })

  it('given a version it was not checked against, when run, then the install fails with a sentence naming the version, and nothing is written', () => {
    const root = fakeInstall('2.13.0', shipped)
    const run = runPatch(root)
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('cannot patch @platformatic/kafka 2.13.0')
    expect(run.stderr).toContain('2.12.1')
    expect(consumerOf(root)).toBe(shipped)
  })

  it('given the pinned version with a consumer of another shape, when run, then it fails rather than skip the patch', () => {
    const root = fakeInstall('2.12.1', 'class Consumer {}\n')
    const run = runPatch(root)
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('no read_committed filter where the patch expects one')
  })
})
