import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { setUpFastApiExample } from './fastapi-services.js'
import { waitFor } from './harness.js'

const RUN_SH = fileURLToPath(new URL('../../examples/fastapi-pipeline/run.sh', import.meta.url))

const answers = (url: string): Promise<boolean> => fetch(url).then(() => true, () => false)

describe('examples/fastapi-pipeline/run.sh, stopped by its PID as a script would', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-run-sh-'))
  let run: ChildProcess | undefined
  let output = ''

  beforeAll(async () => {
    await setUpFastApiExample()
  }, 300_000)
  afterAll(() => {
    if (run?.pid && run.exitCode === null && run.signalCode === null) {
      try {
        process.kill(-run.pid, 'SIGKILL')
      } catch {
        // the group is gone already
      }
    }
    fs.rmSync(data, { recursive: true, force: true })
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`given run.sh up with an order completed, when ${signal} goes to its PID alone, then dev and both services stop and it exits 0`, async () => {
      const [api, inventory, payment, metrics] = [await freePort(), await freePort(), await freePort(), await freePort()]
      output = ''
      // A group of its own, as a backgrounded job in a script has: only its PID is signalled below.
      run = spawn('bash', [RUN_SH, '--orders', '1', '--metrics-port-base', String(20_000 + (metrics % 10_000))], {
        env: { ...process.env, KAFKA_BROKERS: inject('brokers'), PORT: String(api), INVENTORY_PORT: String(inventory), PAYMENT_PORT: String(payment), SAGA_DATA_DIR: path.join(data, signal), SAGA_TOPIC_PREFIX: `runsh${api}.` },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
      run.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
      run.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
      await waitFor(() => /demo order 1\/1: [0-9a-f-]{36}/.test(output), `run.sh's dev to place its demo order\n${output.slice(-2000)}`, 180_000, 250)
      const orderId = /demo order 1\/1: ([0-9a-f-]{36})/.exec(output)![1]!
      await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${api}/orders/${orderId}`)).json()) as { status: string }).status !== 'pending', 'the demo order to end', 60_000)

      const exited = new Promise<number | null>((resolve) => run!.once('exit', (code) => resolve(code)))
      process.kill(run.pid!, signal)
      expect(await exited).toBe(0)
      expect(output).toMatch(/stopping/)
      for (const port of [api, inventory, payment]) {
        await waitFor(async () => !(await answers(`http://127.0.0.1:${port}/`)), `port ${port} to be closed after run.sh exited`, 30_000)
      }
      const groupGone = (): boolean => {
        try {
          process.kill(-run!.pid!, 0)
          return false
        } catch {
          return true
        }
      }
      await waitFor(groupGone, `every process run.sh started to exit; left: ${execFileSync('ps', ['-o', 'pid,stat,cmd', '-g', String(run.pid)], { encoding: 'utf8' }).trim()}`, 30_000)
    }, 400_000)
  }
})
