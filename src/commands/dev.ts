import { Command, Flags } from '@oclif/core'

import { brokerAnswers, startLocalKafka, type LocalKafka } from '../broker/local-kafka.js'
import { configFrom, connectionFlags, sagaFrom } from '../cli/flags.js'
import { openBus } from '../kafka/open-bus.js'
import { roleNames } from '../saga/derive.js'
import { Supervisor, unitsFor, waitForHealthy, type Unit } from '../ops/supervisor.js'
import { DEV_METRICS_PORT_BASE, devMetricsPort } from '../ops/top.js'
import { topicSpecs } from '../topics.js'
import { onStopSignal } from '../cli/stop-signal.js'

const COLORS: Record<string, string> = { api: '36', orchestrator: '35', inventory: '33', payment: '32', notifier: '34' }

export default class Dev extends Command {
  static override summary = 'Run the whole saga on this machine: a local Kafka broker if none answers, the topics, and all five roles.'
  static override description = 'Logs of every role are interleaved, prefixed with the role. A role that dies is restarted. Ctrl-C stops everything this command started.'
  static override examples = ['<%= config.bin %> dev', '<%= config.bin %> dev --orders 10', '<%= config.bin %> dev --instances 3', 'KAFKA_BROKERS=10.0.0.5:9092 <%= config.bin %> dev --orders 0']
  static override flags = {
    ...connectionFlags,
    port: Flags.integer({ description: 'HTTP port of the api role (overrides PORT)', min: 0, max: 65535 }),
    orders: Flags.integer({ description: 'demo orders to place once everything is up', default: 3, min: 0 }),
    instances: Flags.integer({ description: 'instances of each role; they share the partitions, and api instances listen on consecutive ports', default: 1, min: 1, max: 8 }),
    'metrics-port-base': Flags.integer({ description: 'the roles other than the api serve /metrics from this base: orchestrator +10, inventory +20, payment +30, notifier +40, plus the instance index (what `sagactl top` reads)', default: DEV_METRICS_PORT_BASE, min: 1, max: 65000 }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Dev)
    const saga = await sagaFrom(flags)
    const config = configFrom(flags, { allowChaos: true })
    const say = (line: string): void => this.log(`\u001b[1msagactl\u001b[0m      │ ${line}`)
    let broker: LocalKafka | undefined
    let supervisor: Supervisor | undefined
    let stopping = false

    const stopAll = async (): Promise<void> => {
      stopping = true
      await supervisor?.stopAll()
      if (broker) {
        say('stopping the local Kafka broker')
        await broker.stop()
      }
    }
    const interrupted = new Promise<void>((resolve) => onStopSignal(() => resolve()))

    try {
      const brokers = config.brokers.join(',')
      // A local broker is plaintext: with TLS or SASL configured the user means their own cluster,
      // and connecting to it below says exactly what is wrong if it refuses us.
      if (config.kafka.tls || config.kafka.sasl || (await brokerAnswers(brokers))) {
        say(`using the Kafka broker at ${brokers}`)
      } else {
        const [host, port] = config.brokers[0]!.split(':')
        if (config.brokers.length > 1 || !['127.0.0.1', 'localhost'].includes(host!)) {
          this.error(`no Kafka broker answers at ${brokers}, and sagactl only starts a local one on 127.0.0.1`, { exit: 1 })
        }
        say(`no broker at ${brokers}; starting a local Apache Kafka (first run downloads its jars from Maven Central)`)
        broker = await startLocalKafka({ port: Number(port), controllerPort: Number(port) + 1, log: (line) => say(line) })
        say(`Kafka is up at ${broker.brokers} (pid ${broker.pid}, data in ${broker.dataDir})`)
      }
      const bus = openBus(config, 'sagactl-dev')
      await bus.ensureTopics(topicSpecs(config.topicPrefix, saga))
      await bus.close()

      const env = { ...process.env, KAFKA_BROKERS: brokers, SAGA_DATA_DIR: config.dataDir, PORT: String(config.port), SAGA_ALLOW_CHAOS: String(config.allowChaos), SAGA_LOG_PRETTY: '1', ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}) }
      supervisor = new Supervisor({
        env,
        restartAfterMs: 1000,
        onLine: (unit, line) => this.log(`\u001b[${COLORS[unit.split('@')[0]!] ?? '37'}m${unit.padEnd(14)}\u001b[0m │ ${line}`),
        onExit: (role, code, signal, expected) => {
          if (!expected) say(`${role} exited (${signal ?? code}); restarting it in 1 s`)
        },
      })
      const withMetrics = (unit: Unit): Unit =>
        unit.role === 'api' ? unit : { ...unit, env: { ...unit.env, SAGA_METRICS_PORT: String(devMetricsPort(saga, unit.role, unit.instance ? Number(unit.instance) - 1 : 0, flags['metrics-port-base'])) } }
      for (const unit of unitsFor(roleNames(saga), flags.instances, (i) => config.port + i)) supervisor.start(withMetrics(unit))

      const base = `http://127.0.0.1:${config.port}`
      if (await waitForHealthy(base, 60_000, () => stopping)) {
        if (flags.instances > 1) say(`${flags.instances} instances of each role; api instances on ports ${config.port}–${config.port + flags.instances - 1}`)
        say(`all roles started; api at ${base}. Try: curl -s -XPOST ${base}/orders -H 'content-type: application/json' -d '{"items":[{"sku":"book","qty":1}],"amount":999}'`)
        for (let i = 0; i < flags.orders; i++) {
          const response = await fetch(`${base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: 'demo', items: [{ sku: `demo-${i + 1}`, qty: 1 + i }], amount: 500 + 100 * i }) })
          const body = (await response.json()) as { order_id?: string }
          say(`demo order ${i + 1}/${flags.orders}: ${body.order_id ?? response.status}`)
        }
        say(`metrics: ${base}/metrics and ports ${flags['metrics-port-base'] + 10}–${flags['metrics-port-base'] + 40 + flags.instances - 1}; watch them with: sagactl top${flags.instances > 1 ? ` --instances ${flags.instances}` : ''}`)
        say('Ctrl-C stops everything')
      } else if (!stopping) {
        say('the api did not become healthy within 60 s; see its log above')
      }
      await interrupted
      say('stopping')
    } finally {
      await stopAll()
    }
  }
}
