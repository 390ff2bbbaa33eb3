import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

import type { RoleName } from '../runtime/role.js'

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface SupervisorOptions {
  env: NodeJS.ProcessEnv
  onLine?: (role: RoleName, line: string) => void
  onExit?: (role: RoleName, code: number | null, signal: NodeJS.Signals | null, expected: boolean) => void
  /** Restart a role that exits on its own (a crash), after this many ms. */
  restartAfterMs?: number
}

/** Runs roles as child processes (`sagactl start <role>`), restarting any that die unexpectedly. */
export class Supervisor {
  readonly #o: SupervisorOptions
  readonly #children = new Map<RoleName, ChildProcess>()
  readonly #expected = new Set<ChildProcess>()
  #stopping = false

  constructor(options: SupervisorOptions) {
    this.#o = options
  }

  start(role: RoleName): void {
    // SAGACTL_NODE_ARGS reaches the role processes (e.g. "--cpu-prof --cpu-prof-dir=prof" for profiling).
    const nodeArgs = (this.#o.env.SAGACTL_NODE_ARGS ?? '').split(' ').filter(Boolean)
    const child = spawn(process.execPath, [...nodeArgs, RUN, 'start', role], { env: this.#o.env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.set(role, child)
    for (const stream of [child.stdout, child.stderr]) readline.createInterface({ input: stream }).on('line', (line) => this.#o.onLine?.(role, line))
    child.on('exit', (code, signal) => {
      const expected = this.#expected.delete(child) || this.#stopping
      this.#o.onExit?.(role, code, signal, expected)
      if (!expected && this.#o.restartAfterMs !== undefined) {
        setTimeout(() => {
          if (!this.#stopping && this.#children.get(role) === child) this.start(role)
        }, this.#o.restartAfterMs)
      }
    })
  }

  /** Kills a role with a signal and waits for it to exit; the caller decides when to start it again. */
  async kill(role: RoleName, signal: NodeJS.Signals): Promise<void> {
    const child = this.#children.get(role)
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    this.#expected.add(child)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    await exited
  }

  running(role: RoleName): boolean {
    const child = this.#children.get(role)
    return !!child && child.exitCode === null && child.signalCode === null
  }

  async stopAll(): Promise<void> {
    this.#stopping = true
    await Promise.all(
      [...this.#children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once('exit', () => resolve())
            child.kill('SIGTERM')
            setTimeout(() => child.kill('SIGKILL'), 15_000).unref()
          }),
      ),
    )
  }
}

/** Polls the api's /healthz until it answers 200; false at the deadline or when cancelled. */
export async function waitForHealthy(apiUrl: string, timeoutMs: number, cancelled: () => boolean = () => false): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !cancelled()) {
    if (await fetch(`${apiUrl}/healthz`).then((r) => r.ok, () => false)) return true
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}
