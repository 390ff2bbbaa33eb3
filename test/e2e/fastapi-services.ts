import { execFile, spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

import { waitFor } from './harness.js'

// The example's two FastAPI services, as the e2e tests run them. Their dependencies come from PyPI
// (setup.sh); a machine without python3 fails with the line that installs it, never skips.
const EXAMPLE = fileURLToPath(new URL('../../examples/fastapi-pipeline/', import.meta.url))

export async function setUpFastApiExample(): Promise<void> {
  await promisify(execFile)('bash', [path.join(EXAMPLE, 'setup.sh')], { timeout: 300_000 }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`examples/fastapi-pipeline/setup.sh failed: ${error.stderr || error.message}`)
  })
}

export interface Effects {
  effects: { key: string; kind: string; order_id: string; effect_id: string | null; status: number }[]
  calls: { key: string; kind: string; order_id: string; attempt: number }[]
}

export class FastApiService {
  child: ChildProcess | undefined
  constructor(
    readonly module: 'inventory' | 'payment',
    readonly port: number,
    readonly db: string,
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }
  async start(): Promise<void> {
    this.child = spawn(path.join(EXAMPLE, '.venv/bin/python'), ['-m', 'uvicorn', `${this.module}:app`, '--port', String(this.port), '--log-level', 'warning'], { cwd: EXAMPLE, env: { ...process.env, DB: this.db }, stdio: 'ignore' })
    await waitFor(async () => (await fetch(`${this.url}/health`).catch(() => undefined))?.ok, `the ${this.module} service to answer`, 30_000)
  }
  async kill(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  async effects(orderId?: string): Promise<Effects> {
    const all = (await (await fetch(`${this.url}/effects`)).json()) as Effects
    return orderId ? { effects: all.effects.filter((e) => e.order_id === orderId), calls: all.calls.filter((c) => c.order_id === orderId) } : all
  }
}
