import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, describe, expect, inject, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { waitFor } from './harness.js'

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const CLONE_PLACEHOLDER = '<path-to-your-sagactl-clone>'

interface ProjectSteps {
  /** Commands in the order the section gives them, one shell line each. */
  setup: string[]
  files: { path: string; text: string }[]
  build: string[]
  /** The long-running `dev` line. */
  run: string
  secondTerminal: string[]
}

/**
 * The section of docs/your-saga.md, read as the test's script: its shell blocks are the commands,
 * and a block whose first line is `// <path>` is that file. A change to the doc changes what runs.
 */
function projectSteps(): ProjectSteps {
  const doc = fs.readFileSync(path.join(REPO, 'docs/your-saga.md'), 'utf8')
  const start = doc.indexOf('## A saga project of your own')
  expect(start).toBeGreaterThanOrEqual(0)
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1))
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, text: m[2]! }))
  const shell = blocks.filter((b) => b.lang === 'bash').map((b) => b.text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')))
  const files = blocks.flatMap((b) => {
    const named = /^\/\/ (\S+)\n/.exec(b.text)
    return named ? [{ path: named[1]!, text: b.text }] : []
  })
  expect(shell).toHaveLength(3)
  const [setup, build, secondTerminal] = shell as [string[], string[], string[]]
  const run = build.pop()!
  expect(run).toMatch(/^npx sagactl dev --saga /)
  return { setup, files, build, run, secondTerminal }
}

/** A base whose dev metrics ports (base + 10 … + 40: orchestrator, two participants, notifier) are free now, below the ephemeral range. */
async function freeMetricsBase(): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(false))
      server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)))
    })
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + 100 * Math.floor(Math.random() * 120)
    if ((await Promise.all([10, 20, 30, 40].map((o) => free(base + o)))).every(Boolean)) return base
  }
  throw new Error('no free range of metrics ports between 20000 and 32000')
}

/**
 * The test's clone of sagactl: this checkout's package (what package.json's "files" names, with the
 * sources and tsconfig its prepare script compiles), its node_modules linked as a clone's `npm ci`
 * would have them. `npm i <clone>` runs the clone's prepare (tsc), which must build this copy's
 * dist/, not rewrite the one other test files are running.
 */
function cloneOfCheckout(): string {
  const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-clone-'))
  const { files } = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { files: string[] }
  // Not dist/: the install is what builds it.
  for (const entry of new Set(['package.json', 'tsconfig.json', 'src', 'scripts', ...files.filter((f) => f !== 'dist')])) {
    if (fs.existsSync(path.join(REPO, entry))) fs.cpSync(path.join(REPO, entry), path.join(clone, entry), { recursive: true })
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(clone, 'node_modules'))
  return clone
}

describe('a saga project outside the repo, set up exactly as docs/your-saga.md says, runs a saga to completion', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-project-'))
  const clone = cloneOfCheckout()
  const prefix = `p${randomUUID().slice(0, 8)}.`
  let dev: ChildProcess | undefined
  let port = 0

  // npm and npx of the Node.js running the tests, with none of an outer `npm test`'s npm_* settings;
  // npm's cache is warm, so it is preferred to the registry.
  const env = (): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|SAGA_|KAFKA_)/i.test(k))),
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    KAFKA_BROKERS: inject('brokers'),
    SAGA_TOPIC_PREFIX: prefix,
    PORT: String(port),
  })
  const sh = (line: string): { code: number | null; out: string } => {
    const r = spawnSync('bash', ['-c', line.replaceAll(CLONE_PLACEHOLDER, clone)], { cwd: dir, env: env(), encoding: 'utf8', timeout: 240_000 })
    return { code: r.status, out: `${r.stdout}${r.stderr}` }
  }
  const packageType = (): unknown => (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { type?: unknown }).type

  afterAll(async () => {
    if (dev && dev.exitCode === null && dev.signalCode === null) {
      process.kill(-dev.pid!, 'SIGKILL')
    }
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(clone, { recursive: true, force: true })
  })

  it('setup, tsc, then `dev --saga` on the test broker: a demo order and an order of the second terminal complete through the module\'s steps; Ctrl-C stops it all', { timeout: 600_000 }, async () => {
    const steps = projectSteps()
    port = await freePort()

    for (const line of steps.setup) {
      const r = sh(line)
      expect(r.code, `${line}\n${r.out}`).toBe(0)
      // The trap the doc warns of: what npm init writes, before the doc's fix.
      if (line.startsWith('npm init')) expect(packageType()).toBe('commonjs')
    }
    expect(packageType()).toBe('module')
    // A link to the clone, whose own prepare built its dist/ during the install.
    expect(fs.realpathSync(path.join(dir, 'node_modules/sagactl'))).toBe(fs.realpathSync(clone))
    expect(fs.existsSync(path.join(clone, 'dist/public.js'))).toBe(true)

    expect(steps.files.map((f) => f.path).sort()).toEqual(['src/my-saga.ts', 'tsconfig.json'])
    for (const file of steps.files) {
      fs.mkdirSync(path.dirname(path.join(dir, file.path)), { recursive: true })
      fs.writeFileSync(path.join(dir, file.path), file.text)
    }
    for (const line of steps.build) {
      const r = sh(line)
      expect(r.code, `${line}\n${r.out}`).toBe(0)
    }
    const sagaModule = /--saga (\S+)/.exec(steps.run)![1]!
    expect(fs.existsSync(path.join(dir, sagaModule))).toBe(true)

    // The doc's line as written; only the metrics ports move, off the ones other test files may hold.
    const base = await freeMetricsBase()
    let out = ''
    dev = spawn('bash', ['-c', `exec ${steps.run} --metrics-port-base ${base}`], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    dev.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    dev.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    const exited = new Promise<string>((resolve) => dev!.once('exit', (code, signal) => resolve(signal ?? String(code))))

    const demo = await waitFor(() => /demo order 1\/3: ([0-9a-f-]{36})/.exec(out)?.[1], `dev's first demo order\n${out.slice(-3000)}`, 120_000, 250)
    const completed = async (orderId: string): Promise<void> => {
      await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port}/orders/${orderId}`)
          return response.ok && ((await response.json()) as { status: string }).status === 'completed'
        },
        `order ${orderId} to complete\n${out.slice(-3000)}`,
        60_000,
        250,
      )
    }
    await completed(demo)

    const [create, show] = steps.secondTerminal as [string, string]
    expect(create).toContain(`--saga ${sagaModule}`)
    const created = sh(create)
    expect(created.code, created.out).toBe(0)
    const orderId = /order (\S+) placed/.exec(created.out)?.[1]
    expect(orderId).toBeDefined()
    await completed(orderId!)
    const shown = sh(show.replace('<order_id>', orderId!))
    expect(shown.code, shown.out).toBe(0)
    expect(shown.out).toContain('outcome: completed')
    // The module's steps, not the order saga's.
    for (const type of ['hold_goods', 'goods.held', 'take_money', 'money.taken', 'order.completed']) expect(shown.out).toContain(type)

    // Ctrl-C in a terminal signals the whole foreground group: npx, dev and the roles it started.
    process.kill(-dev.pid!, 'SIGINT')
    const ended = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 60_000).unref())])
    // As a shell reports a job ended by Ctrl-C: npx's own exit, or the signal itself.
    expect(['0', '130', 'SIGINT'], out.slice(-3000)).toContain(ended)
    for (const role of ['api', 'orchestrator', 'warehouse', 'bank', 'notifier']) expect(out).toContain(`${role} stopped`)
  })
})
