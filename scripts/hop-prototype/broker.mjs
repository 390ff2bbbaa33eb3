// A single-node Kafka 4.1.1 (KRaft) for the hop prototype, on fixed ports that the tests do not use.
// The jar resolution, properties and spawn are copied from src/broker/local-kafka.ts (same cache dir,
// same marker file), so this script needs no build of sagactl.
//
//   node broker.mjs start   -> prints {"pid":…, "dataDir":…, "brokers":…} and leaves the JVM running
//   node broker.mjs stop    -> SIGTERM to the pid recorded in ./broker.json, then removes its data dir
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Admin } from '@platformatic/kafka'

const here = path.dirname(fileURLToPath(import.meta.url))
const STATE = path.join(here, 'broker.json')
const KAFKA_VERSION = '4.1.1'
const PORT = Number(process.env.HOP_PORT || 39092)
const CONTROLLER_PORT = Number(process.env.HOP_CONTROLLER_PORT || 39093)
const MARKER = '.sagactl-complete'

const POM = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sagactl</groupId><artifactId>local-kafka</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`

function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(process.env.SAGACTL_CACHE_DIR || path.join(base, 'sagactl'), `kafka-${KAFKA_VERSION}`)
}

function resolveJars() {
  const root = cacheDir()
  const libs = path.join(root, 'libs')
  if (existsSync(path.join(libs, MARKER))) return libs
  mkdirSync(root, { recursive: true })
  const work = mkdtempSync(path.join(root, 'resolve-'))
  try {
    writeFileSync(path.join(work, 'pom.xml'), POM)
    console.error(`resolving Kafka ${KAFKA_VERSION} jars with Maven into ${libs}`)
    execFileSync('mvn', ['-q', '-B', '-f', path.join(work, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${path.join(work, 'libs')}`], { stdio: 'inherit' })
    writeFileSync(path.join(work, 'libs', MARKER), `${new Date().toISOString()}\n`)
    try { renameSync(path.join(work, 'libs'), libs) } catch (err) { if (!existsSync(path.join(libs, MARKER))) throw err }
    return libs
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

function serverProperties(logDir) {
  return `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${logDir}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
offsets.topic.num.partitions=1
num.network.threads=2
background.threads=2
log.cleaner.dedupe.buffer.size=2097152
log.initial.task.delay.ms=100
`
}

async function answers(brokers) {
  const admin = new Admin({ clientId: 'hop-probe', bootstrapBrokers: [brokers], retries: 0, connectTimeout: 1000, timeout: 1000 })
  try {
    return await Promise.race([admin.metadata({ topics: [], forceUpdate: true }).then(() => true, () => false), new Promise((r) => setTimeout(() => r(false), 1000))])
  } finally {
    admin.close().catch(() => {})
  }
}

async function start() {
  if (existsSync(STATE)) throw new Error(`${STATE} exists: a broker may be running; run "node broker.mjs stop" first`)
  const cp = path.join(resolveJars(), '*')
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hop-kafka-'))
  const props = path.join(dataDir, 'server.properties')
  const brokerLog = path.join(dataDir, 'broker.log')
  writeFileSync(props, serverProperties(path.join(dataDir, 'kraft')))
  const id = execFileSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' }).trim().split('\n').pop()
  execFileSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', id, '-c', props, '-g'], { stdio: 'ignore' })
  const fd = openSync(brokerLog, 'a')
  // nice 5, like every measurement here; detached so it outlives this script, stopped by `stop`.
  const child = spawn('nice', ['-n', '5', 'java', '-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-cp', cp, 'kafka.Kafka', props], { detached: true, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  child.unref()
  const brokers = `127.0.0.1:${PORT}`
  // `nice` execs java, so the child's pid is the JVM's.
  writeFileSync(STATE, JSON.stringify({ pid: child.pid, dataDir, brokers }))
  const deadline = Date.now() + 90_000
  while (!(await answers(brokers))) {
    if (Date.now() > deadline) throw new Error(`broker did not answer; see ${brokerLog}`)
    await new Promise((r) => setTimeout(r, 250))
  }
  console.log(JSON.stringify({ pid: child.pid, dataDir, brokers }))
}

async function stop() {
  if (!existsSync(STATE)) return
  const { pid, dataDir } = JSON.parse(readFileSync(STATE, 'utf8'))
  const alive = () => { try { process.kill(pid, 0); return true } catch { return false } }
  // Only our own JVM: the pid must still be a kafka.Kafka whose properties live in our data dir.
  const cmdline = (() => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8') } catch { return '' } })()
  if (alive() && cmdline.includes(dataDir)) {
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 100))
    if (alive()) process.kill(pid, 'SIGKILL')
  }
  rmSync(dataDir, { recursive: true, force: true })
  rmSync(STATE, { force: true })
  console.log(`stopped broker ${pid}`)
}

const cmd = process.argv[2]
if (cmd === 'start') await start()
else if (cmd === 'stop') await stop()
else { console.error('usage: node broker.mjs start|stop'); process.exit(2) }
