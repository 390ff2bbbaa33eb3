import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import { Admin } from '@platformatic/kafka'

import { formatStorage, freePort, kafkaClasspath, KAFKA_VERSION, newClusterId, spawnKafka, waitUntilAnswers, type KafkaProcess } from './local-kafka.js'

export interface ClusterNode {
  id: number
  /** host:port of this node's client listener. */
  address: string
  /** The running JVM's PID; undefined while the node is down. */
  pid: number | undefined
}

export interface LocalCluster {
  /** Every node's client listener, comma-separated: what KAFKA_BROKERS takes. */
  brokers: string
  nodes: ClusterNode[]
  dataDir: string
  /** Crashes a node (SIGKILL by default) and waits for its JVM to exit. */
  kill(id: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts a node that was killed, on its old data, and waits until the cluster counts it again. */
  restart(id: number): Promise<void>
  /** How many brokers the cluster currently registers, as a client sees it. */
  liveBrokers(): Promise<number>
  stop(): Promise<void>
}

export interface ClusterOptions {
  /** Three by default: the smallest cluster that keeps min.insync.replicas=2 writable with one node down. */
  size?: number
  /** Per node; three JVMs share the machine with the roles. */
  heap?: string[]
  log?: (line: string) => void
}

interface NodeSpec {
  id: number
  port: number
  controllerPort: number
  dir: string
}

function nodeProperties(node: NodeSpec, all: NodeSpec[]): string {
  const replicas = Math.min(3, all.length)
  const minIsr = Math.max(1, replicas - 1)
  return `process.roles=broker,controller
node.id=${node.id}
controller.quorum.voters=${all.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')}
listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${path.join(node.dir, 'kraft')}
# Internal topics survive the loss of one node, as on a production cluster.
offsets.topic.replication.factor=${replicas}
transaction.state.log.replication.factor=${replicas}
transaction.state.log.min.isr=${minIsr}
share.coordinator.state.topic.replication.factor=${replicas}
share.coordinator.state.topic.min.isr=${minIsr}
default.replication.factor=${replicas}
min.insync.replicas=${minIsr}
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# One coordinator for every group: killing its node is the harshest single-node failure.
offsets.topic.num.partitions=1
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.dedupe.buffer.size=2097152
log.initial.task.delay.ms=100
`
}

/** Counts registered brokers through any node that answers; 0 when none does. */
async function countBrokers(brokers: string[], timeoutMs = 2000): Promise<number> {
  const admin = new Admin({ clientId: 'sagactl-cluster-probe', bootstrapBrokers: brokers, retries: 0, connectTimeout: timeoutMs, timeout: timeoutMs })
  try {
    const metadata = await admin.metadata({ topics: [], forceUpdate: true })
    return metadata.brokers.size
  } catch {
    return 0
  } finally {
    admin.close().catch(() => undefined)
  }
}

/**
 * A real multi-node KRaft cluster in combined mode (every node broker and controller), from the
 * same jars as the single local broker, with production-like durability: replication factor 3
 * and min.insync.replicas 2 for internal and new topics.
 */
export async function startLocalCluster(opts: ClusterOptions = {}): Promise<LocalCluster> {
  const size = opts.size ?? 3
  const heap = opts.heap ?? ['-Xms128m', '-Xmx384m']
  const log = opts.log ?? (() => {})
  const cp = await kafkaClasspath(log)
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sagactl-cluster-'))
  const specs: NodeSpec[] = []
  for (let id = 1; id <= size; id++) specs.push({ id, port: await freePort(), controllerPort: await freePort(), dir: path.join(dataDir, `node-${id}`) })
  const addresses = specs.map((s) => `127.0.0.1:${s.port}`)
  const processes = new Map<number, KafkaProcess>()
  const nodes: ClusterNode[] = specs.map((s) => ({ id: s.id, address: `127.0.0.1:${s.port}`, pid: undefined }))

  const launch = (spec: NodeSpec): KafkaProcess => {
    const proc = spawnKafka(cp, path.join(spec.dir, 'server.properties'), path.join(spec.dir, 'broker.log'), heap, log)
    processes.set(spec.id, proc)
    nodes.find((n) => n.id === spec.id)!.pid = proc.pid
    return proc
  }
  const spec = (id: number): NodeSpec => {
    const found = specs.find((s) => s.id === id)
    if (!found) throw new Error(`the cluster has no node ${id}; its nodes are ${specs.map((s) => s.id).join(', ')}`)
    return found
  }
  const stop = async (): Promise<void> => {
    await Promise.all([...processes.values()].map((p) => p.stop()))
    await rm(dataDir, { recursive: true, force: true })
  }
  const waitForAll = async (node: NodeSpec): Promise<void> => {
    // A node answers before the controllers have registered all its peers: wait for the whole count.
    await waitUntilAnswers(processes.get(node.id)!, path.join(node.dir, 'broker.log'), async () => (await countBrokers([`127.0.0.1:${node.port}`])) === size, 90_000)
  }

  const started = Date.now()
  try {
    // One cluster id for all nodes, or they would form separate clusters.
    const clusterId = await newClusterId(cp)
    for (const s of specs) {
      await mkdir(s.dir, { recursive: true })
      await writeFile(path.join(s.dir, 'server.properties'), nodeProperties(s, specs))
      await formatStorage(cp, path.join(s.dir, 'server.properties'), clusterId)
    }
    for (const s of specs) launch(s)
    for (const s of specs) await waitForAll(s)
  } catch (error) {
    await stop()
    throw error
  }
  log(`Kafka ${KAFKA_VERSION} cluster of ${size} nodes answering on ${addresses.join(',')} after ${((Date.now() - started) / 1000).toFixed(1)} s (data: ${dataDir})`)

  return {
    brokers: addresses.join(','),
    nodes,
    dataDir,
    async kill(id, signal = 'SIGKILL') {
      const proc = processes.get(spec(id).id)
      await proc?.kill(signal)
      nodes.find((n) => n.id === id)!.pid = undefined
    },
    async restart(id) {
      const s = spec(id)
      if (processes.get(id)?.exit === undefined) throw new Error(`node ${id} is still running (pid ${processes.get(id)?.pid}); kill it first`)
      launch(s)
      await waitForAll(s)
      log(`node ${id} is back (pid ${processes.get(id)!.pid})`)
    },
    liveBrokers: () => countBrokers(addresses),
    stop,
  }
}
