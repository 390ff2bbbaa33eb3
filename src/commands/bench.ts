import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { Command, Flags } from '@oclif/core'

import { brokerAnswers, freePort, KAFKA_VERSION, resolveKafkaJars, startLocalKafka, type LocalKafka } from '../broker/local-kafka.js'
import { configFrom, connectionFlags } from '../cli/flags.js'
import { command } from '../envelope.js'
import { openBus } from '../kafka/open-bus.js'
import type { MessageBus } from '../kafka/port.js'
import { ROLE_NAMES } from '../runtime/role.js'
import { finishReport, HOP_COUNT, measureFloor, runSagas, type BenchReport } from '../services/bench/bench.js'
import { databasePath, openDatabase } from '../db/database.js'
import { findProcesses } from '../services/bench/processes.js'
import { percentiles, type Percentiles } from '../services/bench/stats.js'
import { Supervisor, waitForHealthy } from '../services/supervisor.js'
import { topicNames, topicSpecs } from '../topics.js'

const run = promisify(execFile)

export default class Bench extends Command {
  static override summary = 'Measure sagas per second and submission→final latency, against the Kafka round-trip floor measured in the same run.'
  static override description =
    'By default it starts its own system (a local broker if none answers, the five roles with success rates 1, chaos off, logs at warn) on fresh topics, so a run is repeatable with one command. With --attach it measures the system already running at KAFKA_BROKERS / PORT (run its roles with INVENTORY_SUCCESS_RATE=1 PAYMENT_SUCCESS_RATE=1).'
  static override examples = ['<%= config.bin %> bench --orders 5000 --rate 1000', '<%= config.bin %> bench --orders 2000 --rate 200 --json', '<%= config.bin %> bench --attach --via api --concurrency 32']
  static override enableJsonFlag = true
  static override flags = {
    ...connectionFlags,
    orders: Flags.integer({ description: 'orders to submit', default: 2000, min: 1 }),
    rate: Flags.integer({ description: 'open loop: orders per second', min: 1, exclusive: ['concurrency'] }),
    concurrency: Flags.integer({ description: 'closed loop: orders in flight (default 64 when --rate is not given)', min: 1 }),
    via: Flags.string({ description: 'submit through POST /orders or by publishing order.created', options: ['api', 'kafka'], default: 'kafka' }),
    attach: Flags.boolean({ description: 'measure the system already running instead of starting one' }),
    'floor-samples': Flags.integer({ description: 'round trips for the floor measurement', default: 300, min: 10 }),
    chart: Flags.string({ description: 'where to write the SVG chart', default: 'bench-results/bench-latest.svg' }),
    timeout: Flags.integer({ description: 'seconds to wait for the last final event', default: 300 }),
  }

  async run(): Promise<BenchReport> {
    const { flags } = await this.parse(Bench)
    const config = configFrom(flags)
    const say = (line: string) => process.stderr.write(`bench │ ${line}\n`)
    let broker: LocalKafka | undefined
    let supervisor: Supervisor | undefined
    let dataDir: string | undefined
    let brokers = config.brokers.join(',')
    let prefix = config.topicPrefix
    let apiUrl = `http://127.0.0.1:${config.port}`
    try {
      if (!flags.attach) {
        // As in dev: a local broker is plaintext, so never start one in place of a secured cluster.
        if (!config.kafka.tls && !config.kafka.sasl && !(await brokerAnswers(brokers))) {
          say('no broker answers; starting a local Kafka')
          broker = await startLocalKafka({ port: await freePort(), controllerPort: await freePort(), log: say })
          brokers = broker.brokers
        }
        prefix = `bench-${randomUUID().slice(0, 8)}.`
        dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-bench-'))
        const port = await freePort()
        apiUrl = `http://127.0.0.1:${port}`
        supervisor = new Supervisor({
          env: { ...process.env, KAFKA_BROKERS: brokers, SAGA_DATA_DIR: dataDir, SAGA_TOPIC_PREFIX: prefix, PORT: String(port), INVENTORY_SUCCESS_RATE: '1', PAYMENT_SUCCESS_RATE: '1', SAGA_ALLOW_CHAOS: 'false', LOG_LEVEL: 'warn', SAGA_LOG_PRETTY: '0' },
          onLine: (role, line) => say(`${role}: ${line}`),
        })
        const bus = openBus({ brokers: brokers.split(','), kafka: broker ? {} : config.kafka }, 'sagactl-bench')
        await bus.ensureTopics(topicSpecs(prefix))
        await bus.close()
        for (const role of ROLE_NAMES) supervisor.start(role)
        if (!(await waitForHealthy(apiUrl, 60_000))) this.error('the roles did not start within 60 s', { exit: 1 })
        say(`system up on topics ${prefix}*`)
      }

      const bus = openBus({ brokers: brokers.split(','), kafka: broker ? {} : config.kafka }, 'sagactl-bench')
      const topics = topicNames(prefix)
      try {
        if (flags.attach) {
          for (const role of ['inventory', 'payment'] as const) {
            const chaos = command('set_chaos', { order_id: `chaos-${role}`, saga_id: `chaos-${role}`, payload: { clear: true } }, Date.now())
            await bus.publish([{ topic: role === 'inventory' ? topics.inventoryCommands : topics.paymentCommands, key: chaos.order_id, value: JSON.stringify(chaos) }])
          }
        }
        say(`measuring the floor: ${flags['floor-samples']} produce→consume round trips`)
        const floor = await measureFloor(bus, `${prefix}bench.floor-${randomUUID().slice(0, 8)}`, flags['floor-samples'])
        say(`floor p50 ${floor.p50} ms, p99 ${floor.p99} ms`)
        const brokerE2e = await brokerEndToEnd(brokers.split(',')[0]!, `${prefix}bench.e2e-${randomUUID().slice(0, 8)}`, bus, say)

        const before = findProcesses((cmd) => (cmd.includes('kafka.Kafka') ? 'kafka broker' : /run\.js start (\w+)/.exec(cmd)?.[1]))
        const t0 = Date.now()
        const concurrency = flags.rate ? undefined : (flags.concurrency ?? 64)
        say(`submitting ${flags.orders} orders via ${flags.via}, ${flags.rate ? `open loop at ${flags.rate}/s` : `closed loop, ${concurrency} in flight`}`)
        const result = await runSagas(bus, topics, {
          orders: flags.orders,
          ...(flags.rate ? { rate: flags.rate } : {}),
          ...(concurrency ? { concurrency } : {}),
          via: flags.via as 'api' | 'kafka',
          apiUrl,
          timeoutMs: flags.timeout * 1000,
          onProgress: (s, f) => say(`submitted ${s}, finished ${f}`),
        })
        const { sagas, processes, svg } = finishReport(result, before, (Date.now() - t0) / 1000)
        const relay = dataDir ? outboxLag(dataDir, t0) : {}
        fs.mkdirSync(path.dirname(path.resolve(flags.chart)), { recursive: true })
        fs.writeFileSync(flags.chart, svg)
        const report: BenchReport = {
          machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, kafka: KAFKA_VERSION },
          options: { orders: flags.orders, rate: flags.rate ?? null, concurrency: concurrency ?? null, via: flags.via },
          floor_ms: floor,
          broker_e2e_ms: brokerE2e,
          sagas,
          p50_vs_floor: floor.p50 > 0 ? Math.round((sagas.latency_ms.p50 / (HOP_COUNT * floor.p50)) * 100) / 100 : null,
          processes,
          outbox_lag_ms: relay,
          chart: flags.chart,
        }
        this.log(render(report))
        if (sagas.finished < sagas.submitted) process.exitCode = 1
        return report
      } finally {
        await bus.close()
      }
    } finally {
      await supervisor?.stopAll()
      await broker?.stop()
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/** How long rows waited in each role's outbox: commit time to the relay marking them sent. */
function outboxLag(dataDir: string, since: number): Record<string, Percentiles> {
  const lags: Record<string, Percentiles> = {}
  for (const role of ROLE_NAMES) {
    const file = databasePath(dataDir, role)
    if (!fs.existsSync(file)) continue
    const db = openDatabase(file, { readonly: true })
    try {
      const rows = db.$client.prepare("SELECT sent_at - created_at AS lag FROM outbox WHERE created_at >= ? AND sent_at IS NOT NULL AND topic NOT LIKE '%.changelog'").pluck().all(since) as number[]
      lags[role] = percentiles(rows)
    } finally {
      db.$client.close()
    }
  }
  return lags
}

/** Kafka's own end-to-end latency tool (kafka-tools), where Java and the jars are at hand. */
async function brokerEndToEnd(broker: string, topic: string, bus: MessageBus, say: (line: string) => void): Promise<BenchReport['broker_e2e_ms']> {
  try {
    const libs = await resolveKafkaJars()
    await bus.ensureTopics([{ name: topic, partitions: 1 }])
    const { stdout } = await run('java', ['-cp', path.join(libs, '*'), 'org.apache.kafka.tools.EndToEndLatency', broker, topic, '2000', 'all', '200'], { timeout: 120_000 })
    const avg = Number(/Avg latency: ([\d.]+)/.exec(stdout)?.[1])
    const p = /50th = ([\d.]+), 99th = ([\d.]+), 99\.9th = ([\d.]+)/.exec(stdout)
    if (!p) throw new Error(stdout.slice(-300))
    say(`Kafka EndToEndLatency: p50 ${p[1]} ms, p99 ${p[2]} ms`)
    return { avg, p50: Number(p[1]), p99: Number(p[2]), p999: Number(p[3]) }
  } catch (error) {
    say(`Kafka's EndToEndLatency tool did not run: ${(error as Error).message.split('\n')[0]}`)
    return null
  }
}

function render(r: BenchReport): string {
  const l = r.sagas.latency_ms
  const lines = [
    `machine: ${r.machine.cpus} × ${r.machine.cpu_model}, ${r.machine.memory_gib} GiB, Node ${r.machine.node}, Kafka ${r.machine.kafka}`,
    `load: ${r.options.orders} orders via ${r.options.via}, ${r.options.rate ? `open loop ${r.options.rate}/s` : `closed loop ${r.options.concurrency} in flight`}`,
    `sagas: ${r.sagas.submitted} submitted, ${r.sagas.finished} finished (${r.sagas.completed} completed, ${r.sagas.cancelled} cancelled) in ${r.sagas.duration_s} s`,
    `throughput (steady, 10th–90th percentile of completions): ${r.sagas.throughput_steady} sagas/s`,
    `latency submission→final, ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}`,
    `floor (one produce→consume round trip, same client), ms: p50 ${r.floor_ms?.p50}  p99 ${r.floor_ms?.p99}; saga p50 = ${r.p50_vs_floor} × (${HOP_COUNT} hops × floor p50)`,
    r.broker_e2e_ms ? `Kafka EndToEndLatency tool, ms: p50 ${r.broker_e2e_ms.p50}  p99 ${r.broker_e2e_ms.p99}  p99.9 ${r.broker_e2e_ms.p999}` : 'Kafka EndToEndLatency tool: not run',
    'hops (producer timestamps), ms:',
    ...Object.entries(r.sagas.hops_ms).map(([hop, p]) => `  ${hop.padEnd(42)} p50 ${p.p50}  p99 ${p.p99}`),
    'outbox: commit → published (the relay), ms:',
    ...Object.entries(r.outbox_lag_ms).map(([role, p]) => `  ${role.padEnd(13)} p50 ${p.p50}  p99 ${p.p99}  (${p.count} rows)`),
    'processes during the run:',
    ...r.processes.map((p) => `  ${p.name.padEnd(13)} cpu ${String(p.cpu_percent).padStart(6)} %  rss ${p.rss_mib} MiB (peak ${p.peak_rss_mib})`),
    `chart: ${r.chart}`,
  ]
  return lines.join('\n')
}
