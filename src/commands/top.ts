import { Command, Flags } from '@oclif/core'

import { connectionFlags, sagaFrom } from '../cli/flags.js'
import { roleNames } from '../saga/derive.js'
import { DEV_METRICS_PORT_BASE, devEndpoints, render, scrape, summarize, type Scrape, type TopView } from '../ops/top.js'
import { onStopSignal } from '../cli/stop-signal.js'

export default class Top extends Command {
  static override summary = "A live dashboard of the running saga, from the roles' /metrics endpoints."
  static override description =
    "Shows sagas/s, sagas in flight by status, p50/p99 saga duration, dead letters, and each role's consumer lag and outbox depth. By default it reads the endpoints `sagactl dev` serves: the api on PORT, the other roles on ports from --metrics-port-base (orchestrator +10, inventory +20, payment +30, notifier +40, plus the instance index). Name other endpoints with --endpoint."
  static override examples = ['<%= config.bin %> top', '<%= config.bin %> top --instances 3', '<%= config.bin %> top --once --json', '<%= config.bin %> top --endpoint http://10.0.0.5:3000/metrics --endpoint http://10.0.0.6:9464/metrics']
  static override enableJsonFlag = true
  static override flags = {
    endpoint: Flags.string({ description: 'a /metrics URL to read (repeatable); replaces the defaults', multiple: true }),
    port: Flags.integer({ description: 'HTTP port of the (first) api (default PORT, else 3000)', min: 1, max: 65535 }),
    'metrics-port-base': Flags.integer({ description: 'base of the metrics ports `sagactl dev` gives the other roles', default: DEV_METRICS_PORT_BASE, min: 1, max: 65000 }),
    instances: Flags.integer({ description: 'instances of each role, as given to `sagactl dev --instances`', default: 1, min: 1, max: 8 }),
    host: Flags.string({ description: 'host of the default endpoints', default: '127.0.0.1' }),
    interval: Flags.integer({ description: 'seconds between refreshes (with --once: between the two scrapes that give the rates)', default: 2, min: 1 }),
    once: Flags.boolean({ description: 'print one view and exit (implied by --json)', default: false }),
    saga: connectionFlags.saga,
  }

  async run(): Promise<TopView> {
    const { flags } = await this.parse(Top)
    const saga = await sagaFrom(flags)
    const roles = roleNames(saga)
    const apiPort = flags.port ?? Number(process.env.PORT || 3000)
    const endpoints = flags.endpoint?.map((url) => ({ url })) ?? devEndpoints(saga, apiPort, flags.instances, flags['metrics-port-base'], flags.host)
    const round = (): Promise<Scrape[]> => Promise.all(endpoints.map((e) => scrape(e)))
    const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, flags.interval * 1000))

    if (flags.once || this.jsonEnabled()) {
      // Rates need two scrapes: the view compares this round with one taken an interval earlier.
      const first = await round()
      await pause()
      const view = summarize(roles, await round(), first)
      if (!this.jsonEnabled()) this.log(render(view, flags.interval))
      if (view.down.length === endpoints.length) this.error(`no endpoint answered: ${view.down.map((d) => `${d.endpoint} (${d.error})`).join(', ')}`, { exit: 1 })
      return view
    }

    let quit = false
    const stop = (): void => {
      quit = true
    }
    onStopSignal(stop)
    const tty = process.stdin.isTTY === true
    if (tty) {
      process.stdin.setRawMode(true)
      process.stdin.resume()
      process.stdin.on('data', (key: Buffer) => {
        if (key[0] === 0x71 || key[0] === 0x03) stop() // q, Ctrl-C
      })
    }
    // The alternate screen, as top(1) does: the terminal comes back as it was.
    process.stdout.write('\u001b[?1049h\u001b[?25l')
    let before: Scrape[] | undefined
    let view: TopView | undefined
    try {
      while (!quit) {
        const now = await round()
        view = summarize(roles, now, before)
        before = now
        process.stdout.write(`\u001b[H\u001b[2J${render(view, flags.interval)}\n`)
        for (let waited = 0; waited < flags.interval * 1000 && !quit; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    } finally {
      process.stdout.write('\u001b[?25h\u001b[?1049l')
      if (tty) {
        process.stdin.setRawMode(false)
        process.stdin.pause()
      }
    }
    return view!
  }
}
