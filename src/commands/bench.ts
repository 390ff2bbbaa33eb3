import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { Command, Flags } from '@oclif/core'

import { brokerAnswers, freePort, KAFKA_VERSION, resolveKafkaJars, startLocalKafka, type LocalKafka } from '../broker/local-kafka.js'
import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import type { Saga } from '../saga/define.js'
import { command } from '../envelope.js'
import { openBus } from '../kafka/open-bus.js'
import type { MessageBus } from '../kafka/port.js'
import { commandTopicKey } from '../saga/define.js'
import { chaosTargets, CHAOS_COMMAND, roleNames } from '../saga/derive.js'
import { chartOf, measureFloor, runSagas, type BenchReport } from '../ops/bench/bench.js'
import { describeProcess, pidListeningOn } from '../ops/bench/broker-pid.js'
import { databasePath, openDatabase } from '../db/database.js'
import { loopDelayByRole, readLoopStats } from '../ops/bench/loop-delay.js'
import { CpuMeter, sample } from '../ops/bench/processes.js'
import { percentiles, type Percentiles } from '../ops/bench/stats.js'
import { sustainedVerdict } from '../ops/bench/sustained.js'
import { Supervisor, waitForHealthy } from '../ops/supervisor.js'
import { topicNames, topicSpecs } from '../topics.js'

const run = promisify(execFile)

export default class Bench extends Command {
  static override summary = 'Measure sagas per second and order.created→final latency, against the Kafka round-trip floor measured in the same run.'
  static override description =
    'By default it starts its own system (a local broker if none answers, the five roles with success rates 1, chaos off, logs at warn) on fresh topics, so a run is repeatable with one command. With --attach it measures the system already running at KAFKA_BROKERS / PORT (run its roles with INVENTORY_SUCCESS_RATE=1 PAYMENT_SUCCESS_RATE=1). With --duration it runs open loop for that long at --rate and says whether the system kept up.'
  static override examples = [
    '<%= config.bin %> bench --orders 5000 --rate 1000',
    '<%= config.bin %> bench --duration 60s --rate 200 --json',
    '<%= config.bin %> bench --attach --via api --concurrency 32',
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...connectionFlags,
    orders: Flags.integer({ description: 'orders to submit (default 2000, or rate × duration with --duration)', min: 1, exclusive: ['duration'] }),
    rate: Flags.integer({ description: 'open loop: orders per second', min: 1, exclusive: ['concurrency'] }),
    concurrency: Flags.integer({ description: 'closed loop: orders in flight (default 64 when --rate is not given)', min: 1 }),
    duration: Flags.string({ description: 'sustained mode: submit at --rate for this long (60s, 2m; a bare number is seconds)', dependsOn: ['rate'], exclusive: ['concurrency'] }),
    grace: Flags.string({ description: 'how long after the last submission a saga may finish and still count as kept up', default: '5s' }),
    via: Flags.string({ description: 'submit through POST /orders or by publishing order.created', options: ['api', 'kafka'], default: 'kafka' }),
    attach: Flags.boolean({ description: 'measure the system already running instead of starting one' }),
    'broker-pid': Flags.integer({ description: "the broker's process id, to count its CPU when the bench did not start it and cannot find it listening on this machine", min: 1 }),
    'loop-stats': Flags.string({ description: 'with --attach: the SAGA_LOOP_STATS file or directory the roles write to, for their event-loop delay' }),
    'floor-samples': Flags.integer({ description: 'round trips for the floor measurement', default: 300, min: 10 }),
    chart: Flags.string({ description: 'where to write the SVG chart', default: 'bench-results/bench-latest.svg' }),
    timeout: Flags.integer({ description: 'seconds to wait for the last final event after the last submission', default: 300 }),
  }

  async run(): Promise<BenchReport> {
    const { flags } = await this.parse(Bench)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags)
    const say = (line: string) => process.stderr.write(`bench │ ${line}\n`)
    const durationS = flags.duration === undefined ? undefined : seconds(flags.duration, '--duration', (m) => this.error(m, { exit: 2 }))
    const graceS = seconds(flags.grace, '--grace', (m) => this.error(m, { exit: 2 }))
    const orders = flags.orders ?? (durationS !== undefined && flags.rate ? Math.max(1, Math.round(flags.rate * durationS)) : 2000)
    const via = flags.via as 'api' | 'kafka'
    let broker: LocalKafka | undefined
    let supervisor: Supervisor | undefined
    let dataDir: string | undefined
    let loopStats = flags['loop-stats']
    let brokers = config.brokers.join(',')
    let prefix = config.topicPrefix
    let apiUrl = `http://127.0.0.1:${config.port}`
    const meter = new CpuMeter()
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
        loopStats = path.join(dataDir, 'loop-stats')
        fs.mkdirSync(loopStats)
        const port = await freePort()
        apiUrl = `http://127.0.0.1:${port}`
        supervisor = new Supervisor({
          env: { ...process.env, KAFKA_BROKERS: brokers, SAGA_DATA_DIR: dataDir, SAGA_TOPIC_PREFIX: prefix, PORT: String(port), INVENTORY_SUCCESS_RATE: '1', PAYMENT_SUCCESS_RATE: '1', SAGA_ALLOW_CHAOS: 'false', LOG_LEVEL: 'warn', SAGA_LOG_PRETTY: '0', SAGA_LOOP_STATS: loopStats },
          onLine: (role, line) => say(`${role}: ${line}`),
          onSpawn: (role, child) => {
            if (child.pid === undefined) return
            const pid = child.pid
            meter.track(role, pid)
            child.once('exit', () => meter.exited(pid))
          },
          onExit: (role, code, signal, expected) => {
            if (!expected) say(`${role} exited (${signal ?? `code ${code}`}); restarting it`)
          },
          // A role that dies mid-run comes back, as under any supervisor; its CPU still counts.
          restartAfterMs: 1000,
        })
        const bus = openBus({ brokers: brokers.split(','), kafka: broker ? {} : config.kafka }, 'sagactl-bench')
        await bus.ensureTopics(topicSpecs(prefix, saga))
        await bus.close()
        for (const role of roleNames(saga)) supervisor.start(role)
        if (!(await waitForHealthy(apiUrl, 60_000))) this.error('the roles did not start within 60 s', { exit: 1 })
        say(`system up on topics ${prefix}*`)
      }
      const brokerCpu = trackBroker(meter, broker, flags['broker-pid'], brokers.split(',')[0]!)

      const bus = openBus({ brokers: brokers.split(','), kafka: broker ? {} : config.kafka }, 'sagactl-bench')
      const topics = topicNames(prefix, saga)
      try {
        if (flags.attach) {
          for (const role of chaosTargets(saga)) {
            const chaos = command(CHAOS_COMMAND, { order_id: `chaos-${role}`, saga_id: `chaos-${role}`, payload: { clear: true } }, Date.now())
            await bus.publish([{ topic: topics[commandTopicKey(role)], key: chaos.order_id, value: JSON.stringify(chaos) }])
          }
        }
        say(`measuring the floor: ${flags['floor-samples']} produce→consume round trips`)
        const floor = await measureFloor(bus, `${prefix}bench.floor-${randomUUID().slice(0, 8)}`, flags['floor-samples'])
        say(`floor p50 ${floor.p50} ms, p99 ${floor.p99} ms`)
        const brokerE2e = await brokerEndToEnd(brokers.split(',')[0]!, `${prefix}bench.e2e-${randomUUID().slice(0, 8)}`, bus, say)

        const concurrency = flags.rate ? undefined : (flags.concurrency ?? 64)
        say(`submitting ${orders} orders via ${via}, ${flags.rate ? `open loop at ${flags.rate}/s` : `closed loop, ${concurrency} in flight`}`)
        const t0 = Date.now()
        meter.start()
        const { timeline, ...result } = await runSagas(bus, topics, {
          saga,
          orders,
          ...(flags.rate ? { rate: flags.rate } : {}),
          ...(concurrency ? { concurrency } : {}),
          via,
          apiUrl,
          timeoutMs: flags.timeout * 1000,
          onProgress: (s, f) => say(`submitted ${s}, finished ${f}`),
        })
        const usage = meter.finish(result.finished)
        const t1 = Date.now()
        const relay = dataDir ? outboxLag(saga, dataDir, t0) : {}
        const loops = loopStats ? loopDelayByRole(readLoopStats(loopStats), t0, t1) : {}
        fs.mkdirSync(path.dirname(path.resolve(flags.chart)), { recursive: true })
        fs.writeFileSync(flags.chart, chartOf(result))
        const { buckets: _buckets, ...sagas } = result
        const totalMs = usage.processes.reduce((sum, p) => sum + p.cpu_ms, 0)
        const report: BenchReport = {
          machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, kafka: KAFKA_VERSION },
          options: { orders, rate: flags.rate ?? null, concurrency: concurrency ?? null, duration_s: durationS ?? null, via },
          topic_prefix: prefix,
          floor_ms: floor,
          broker_e2e_ms: brokerE2e,
          sagas,
          sustained: flags.rate ? sustainedVerdict({ rate: flags.rate, sentAt: timeline.sentAt, finishedAt: timeline.finishedAt, graceMs: graceS * 1000, inflight: timeline.inflight }) : null,
          p50_vs_floor: floor.p50 > 0 ? Math.round((sagas.latency_ms.p50 / (sagas.hop_count * floor.p50)) * 100) / 100 : null,
          cpu: {
            window_s: usage.window_s,
            total_ms: totalMs,
            per_saga_ms: sagas.finished > 0 ? Math.round((totalMs / sagas.finished) * 100) / 100 : null,
            broker_included: brokerCpu.included,
            broker: brokerCpu.how,
            generator_ms: usage.generator_cpu_ms,
          },
          processes: usage.processes,
          loop_delay_ms: loops,
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

/** `60s`, `2m`, `500ms`, `1h`; a bare number is seconds. */
function seconds(raw: string, flag: string, fail: (message: string) => never): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim())
  const value = match ? Number(match[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN
  if (!(value > 0)) fail(`${flag} must be a duration such as 60s, 2m or 500ms, got "${raw}"`)
  return value
}

/** Counts the broker's CPU when its process is known, and says how it was known. */
function trackBroker(meter: CpuMeter, started: LocalKafka | undefined, given: number | undefined, address: string): { included: boolean; how: string } {
  if (started) {
    meter.track('kafka broker', started.pid)
    return { included: true, how: `started by the bench (pid ${started.pid})` }
  }
  if (given !== undefined) {
    if (!sample(given)) return { included: false, how: `not counted: --broker-pid ${given} is not a process this user can read` }
    meter.track('kafka broker', given)
    return { included: true, how: `--broker-pid ${given} (${describeProcess(given)}); a broker the bench did not start may also be serving other clients` }
  }
  const found = pidListeningOn(address)
  if (found === undefined) return { included: false, how: `not counted: no process of this user listens on ${address} here; give --broker-pid` }
  meter.track('kafka broker', found)
  return { included: true, how: `found listening on ${address} (pid ${found}, ${describeProcess(found)}); a broker the bench did not start may also be serving other clients` }
}

/** How long rows waited in each role's outbox: commit time to the relay marking them sent. */
function outboxLag(saga: Saga, dataDir: string, since: number): Record<string, Percentiles> {
  const lags: Record<string, Percentiles> = {}
  for (const role of roleNames(saga)) {
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
  const seen = r.sagas.seen_latency_ms
  const load = r.options.rate ? `open loop ${r.options.rate}/s${r.options.duration_s ? ` for ${r.options.duration_s} s` : ''}` : `closed loop ${r.options.concurrency} in flight`
  const s = r.sustained
  const lines = [
    `machine: ${r.machine.cpus} × ${r.machine.cpu_model}, ${r.machine.memory_gib} GiB, Node ${r.machine.node}, Kafka ${r.machine.kafka}`,
    `load: ${r.options.orders} orders via ${r.options.via}, ${load}`,
    `sagas: ${r.sagas.submitted} submitted, ${r.sagas.finished} finished (${r.sagas.completed} completed, ${r.sagas.cancelled} cancelled) in ${r.sagas.duration_s} s`,
    ...(s
      ? [
          `kept up: ${s.kept_up ? 'yes' : 'NO'}: sent ${s.submit_rate}/s of ${s.rate}/s asked; ${s.finished_in_time} (${Math.round(s.finished_in_time_ratio * 1000) / 10} %) finished within the run + ${s.grace_s} s; in flight max ${s.inflight.max}, ${s.inflight.at_end_of_submission} at the last submission, trend ${s.inflight.slope_per_s}/s (limit ${s.inflight.growth_limit_per_s}/s)`,
          ...s.reasons.map((reason) => `  ${reason}`),
        ]
      : []),
    `throughput (steady, 10th–90th percentile of completions): ${r.sagas.throughput_steady} sagas/s`,
    `latency, ${r.sagas.latency_from}, ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}`,
    `  as the bench saw it (sent → final event consumed), ms: p50 ${seen.p50}  p99 ${seen.p99}`,
    `floor (one produce→consume round trip, same client), ms: p50 ${r.floor_ms?.p50}  p99 ${r.floor_ms?.p99}; saga p50 = ${r.p50_vs_floor} × (${r.sagas.hop_count} hops × floor p50)`,
    r.broker_e2e_ms ? `Kafka EndToEndLatency tool, ms: p50 ${r.broker_e2e_ms.p50}  p99 ${r.broker_e2e_ms.p99}  p99.9 ${r.broker_e2e_ms.p999}` : 'Kafka EndToEndLatency tool: not run',
    `hops (${r.sagas.hop_count}), from record timestamps: when each message was published, not when it was decided; ms:`,
    ...Object.entries(r.sagas.hops_ms).map(([hop, p]) => `  ${hop.padEnd(58)} p50 ${p.p50}  p99 ${p.p99}`),
    `  ${'(then: final event published → consumed by the bench)'.padEnd(58)} p50 ${r.sagas.final_seen_ms.p50}  p99 ${r.sagas.final_seen_ms.p99}`,
    'outbox: commit → published (the relay), ms:',
    ...Object.entries(r.outbox_lag_ms).map(([role, p]) => `  ${role.padEnd(13)} p50 ${p.p50}  p99 ${p.p99}  (${p.count} rows)`),
    `CPU over ${r.cpu.window_s} s: ${r.cpu.total_ms} ms, ${r.cpu.per_saga_ms ?? '–'} ms per saga, ${r.cpu.broker_included ? 'broker included' : 'broker NOT included'}; broker ${r.cpu.broker}; the bench itself ${r.cpu.generator_ms} ms (not counted)`,
    ...r.processes.map(
      (p) =>
        `  ${`${p.name} ${p.pid}`.padEnd(22)} cpu ${String(p.cpu_ms).padStart(7)} ms  ${String(p.cpu_ms_per_saga ?? '–').padStart(6)} ms/saga  ${String(p.cpu_percent).padStart(5)} %  rss ${p.rss_mib} MiB (peak ${p.peak_rss_mib})${p.started_during_run ? '  restarted during the run' : ''}${p.exited ? `  exited, measured ${p.cpu_measured}` : ''}`,
    ),
    Object.keys(r.loop_delay_ms).length > 0 ? 'event-loop delay per role (SAGA_LOOP_STATS), ms:' : 'event-loop delay: not reported (start the roles with SAGA_LOOP_STATS and pass --loop-stats)',
    ...Object.entries(r.loop_delay_ms).map(([role, d]) => `  ${role.padEnd(13)} p50 ${d.p50}  p99 ${d.p99}  max ${d.max}  (${d.samples} samples, ${d.processes} process${d.processes === 1 ? '' : 'es'})`),
    `chart: ${r.chart}`,
  ]
  return lines.join('\n')
}
