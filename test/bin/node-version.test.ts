import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// @ts-expect-error plain JavaScript module of the binary, without declarations
import { nodeTooOld } from '../../bin/node-version.js'

const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

describe('the Node.js version check of bin/run.js', () => {
  it('given a supported Node.js, when checked, then it passes', () => {
    for (const v of ['22.22.0', '22.23.5', '24.6.0', '24.22.3', '26.0.0', '26.12.1']) expect(nodeTooOld(v), v).toBeUndefined()
  })

  it('given an end-of-life or too early Node.js, when checked, then one sentence names the version and what is needed', () => {
    for (const v of ['18.20.4', '20.20.2', '22.21.1', '23.11.0', '24.5.0']) {
      const sentence = nodeTooOld(v)
      expect(sentence, v).toContain(`this is Node.js ${v}`)
      expect(sentence).toContain('22.22+, 24.6+ or 26')
      expect(sentence?.split('\n')).toHaveLength(1)
    }
  })

  it('given the Node.js running the tests, when sagactl --version runs, then it starts', () => {
    const run = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.stdout).toContain(`node-v${process.versions.node}`)
  }, 30_000)

  // The machines carry Node 20 at /usr/bin/node; CI puts a current Node first on PATH.
  const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p) && nodeTooOld(spawnSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim()))
  it.runIf(old !== undefined)('given an older Node.js on this machine and SAGACTL_NODE=system, when sagactl runs on it, then it exits 1 with the sentence and no stack trace', () => {
    const run = spawnSync(old!, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, SAGACTL_NODE: 'system' } })
    expect(run.status).toBe(1)
    expect(run.stderr.trim()).toMatch(/^sagactl needs Node\.js 22\.22\+, 24\.6\+ or 26; this is Node\.js \d+\.\d+\.\d+\. .*\.$/)
    expect(run.stderr).not.toContain('    at ')
  }, 30_000)

  it.runIf(old !== undefined)('given an older Node.js and SAGACTL_NODE naming a supported node, when sagactl runs, then it runs on that node', () => {
    const run = spawnSync(old!, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, SAGACTL_NODE: process.execPath } })
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).toContain(`node-v${process.versions.node}`)
  }, 30_000)

  it.runIf(old !== undefined)('given an older Node.js and SAGACTL_NODE naming no node, when sagactl runs, then one sentence says so', () => {
    const run = spawnSync(old!, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, SAGACTL_NODE: '/nowhere/node' } })
    expect(run.status).toBe(1)
    expect(run.stderr.trim()).toBe('SAGACTL_NODE=/nowhere/node is not a node binary that runs here')
  }, 30_000)

  it.runIf(old !== undefined)('given an older Node.js and SAGACTL_NODE naming that same old node, when sagactl runs, then it is refused with the version sentence', () => {
    const run = spawnSync(old!, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, SAGACTL_NODE: old! } })
    expect(run.status).toBe(1)
    expect(run.stderr.trim()).toMatch(/^SAGACTL_NODE=.*: sagactl needs Node\.js 22\.22\+/)
  }, 30_000)
})
