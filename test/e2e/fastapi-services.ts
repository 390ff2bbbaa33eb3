import { execFile, spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

import { freePort } from '../../src/broker/local-kafka.js'
import { waitFor } from './harness.js'

class PortTaken extends Error {}

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

  /**
   * Starts a service on a free port. Between the probe that found the port and uvicorn's bind, another
   * process may take it: then the service exits at once, and it is tried again on another port.
   */
  static async launch(module: 'inventory' | 'payment', db: string): Promise<FastApiService> {
    for (let tries = 1; ; tries++) {
      const service = new FastApiService(module, await freePort(), db)
      try {
        await service.start()
        return service
      } catch (error) {
        if (tries === 3 || !(error instanceof PortTaken)) throw error
      }
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }
  async start(): Promise<void> {
    const child = spawn(path.join(EXAMPLE, '.venv/bin/python'), ['-m', 'uvicorn', `${this.module}:app`, '--port', String(this.port), '--log-level', 'warning'], { cwd: EXAMPLE, env: { ...process.env, DB: this.db }, stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))
    // Whoever answers on the port must be this service: another one there would pass a bare health check.
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => {
        const message = `the ${this.module} service exited with ${code} on port ${this.port}: ${stderr.trim()}`
        reject(/address already in use/i.test(stderr) ? new PortTaken(message) : new Error(message))
      }),
    )
    exited.catch(() => undefined)
    const answers = waitFor(
      async () => {
        const health = await fetch(`${this.url}/health`).then((r) => (r.ok ? (r.json() as Promise<{ service?: string }>) : undefined)).catch(() => undefined)
        if (health && health.service !== this.module) throw new Error(`port ${this.port} answers as "${String(health.service)}", not ${this.module}`)
        return health !== undefined
      },
      `the ${this.module} service to answer`,
      30_000,
    )
    await Promise.race([answers, exited])
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
