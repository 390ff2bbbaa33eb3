import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

import type { RoleName } from '../saga/define.js'

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

/** One process: a role, or a named instance of it with settings of its own (e.g. the api's port). */
export interface Unit {
  role: RoleName
  instance?: string
  env?: Record<string, string>
}

/** `role`, or `role@instance`. */
export function unitName(unit: RoleName | Unit): string {
  if (typeof unit === 'string') return unit
  return unit.instance ? `${unit.role}@${unit.instance}` : unit.role
}

/**
 * `count` instances of each role; with more than one, each is named (`1`, `2`, …: its own data
 * directory) and api instance i listens on `apiPort(i)`.
 */
export function unitsFor(roles: readonly RoleName[], count: number, apiPort: (i: number) => number): Unit[] {
  if (count <= 1) return roles.map((role) => ({ role, ...(role === 'api' ? { env: { PORT: String(apiPort(0)) } } : {}) }))
  return roles.flatMap((role) =>
    Array.from({ length: count }, (_, i): Unit => ({ role, instance: String(i + 1), ...(role === 'api' ? { env: { PORT: String(apiPort(i)) } } : {}) })),
  )
}

export interface SupervisorOptions {
  env: NodeJS.ProcessEnv
  onLine?: (unit: string, line: string) => void
  onExit?: (unit: string, code: number | null, signal: NodeJS.Signals | null, expected: boolean) => void
  /** Every process started, restarts included, before anything else listens to it. */
  onSpawn?: (unit: string, child: ChildProcess) => void
  /** Restart a role that exits on its own (a crash), after this many ms. */
  restartAfterMs?: number
  /** What node runs for a unit; `bin/run.js start <role>` unless told (tests run stand-ins). */
  argv?: (unit: Unit) => string[]
}

/** Runs roles as child processes (`sagactl start <role>`), restarting any that die unexpectedly. */
export class Supervisor {
  readonly #o: SupervisorOptions
  readonly #children = new Map<string, ChildProcess>()
  readonly #units = new Map<string, Unit>()
  readonly #expected = new Set<ChildProcess>()
  #stopping = false

  constructor(options: SupervisorOptions) {
    this.#o = options
  }

  /** Starts a unit; a name already started (`role` or `role@instance`) starts again with the same settings; a running one is left alone. */
  start(what: RoleName | Unit | string): void {
    const name = unitName(typeof what === 'string' && this.#units.has(what) ? this.#units.get(what)! : (what as RoleName | Unit))
    // Never two processes for one unit: they would share a data file and an instance id.
    if (this.running(name)) return
    const unit: Unit = this.#units.get(name) ?? (typeof what === 'string' ? { role: what as RoleName } : what)
    this.#units.set(name, unit)
    // SAGACTL_NODE_ARGS reaches the role processes (e.g. "--cpu-prof --cpu-prof-dir=prof" for profiling).
    const nodeArgs = (this.#o.env.SAGACTL_NODE_ARGS ?? '').split(' ').filter(Boolean)
    const env = { ...this.#o.env, ...unit.env, ...(unit.instance ? { SAGA_INSTANCE_ID: unit.instance } : {}) }
    const argv = this.#o.argv?.(unit) ?? [RUN, 'start', unit.role]
    const child = spawn(process.execPath, [...nodeArgs, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.set(name, child)
    this.#o.onSpawn?.(name, child)
    for (const stream of [child.stdout, child.stderr]) readline.createInterface({ input: stream }).on('line', (line) => this.#o.onLine?.(name, line))
    child.on('exit', (code, signal) => {
      const expected = this.#expected.delete(child) || this.#stopping
      this.#o.onExit?.(name, code, signal, expected)
      if (!expected && this.#o.restartAfterMs !== undefined) {
        setTimeout(() => {
          if (!this.#stopping && this.#children.get(name) === child) this.start(name)
        }, this.#o.restartAfterMs)
      }
    })
  }

  /** Every unit started so far, by name. */
  names(): string[] {
    return [...this.#units.keys()]
  }

  /**
   * Kills a role with a signal and waits for it to exit; the caller decides when to start it again.
   * True once the exit was seen; false, with no signal sent, when the role was not running.
   */
  async kill(name: string, signal: NodeJS.Signals): Promise<boolean> {
    const child = this.#children.get(name)
    if (!child || child.exitCode !== null || child.signalCode !== null) return false
    this.#expected.add(child)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    await exited
    return true
  }

  running(name: string): boolean {
    const child = this.#children.get(name)
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
