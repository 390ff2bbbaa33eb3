import { execFile, spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Admin } from '@platformatic/kafka';

import type { KafkaOptions } from '../kafka/connection.js';
import { connectionOptions } from '../kafka/client.js';

export const KAFKA_VERSION = '4.1.1';

export interface LocalKafka { brokers: string; pid: number; dataDir: string; stop(): Promise<void>; }
export interface StartOptions {
  port?: number; controllerPort?: number; dataDir?: string; log?: (line: string) => void; keepData?: boolean;
  /** The port clients are told to connect to (a proxy in front of the broker); `port` by default. */
  advertisedPort?: number;
}

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MARKER = '.sagactl-complete';
const JAVA_HINT = 'Java 17+ is needed to run a local Kafka broker: apt-get install openjdk-17-jre-headless, or set KAFKA_BROKERS to an existing broker';
const MVN_HINT = 'Maven is needed to download the Kafka broker jars: apt-get install maven, or set KAFKA_BROKERS to an existing broker';

// Every org.apache.kafka artifact must share one version; slf4j-simple because Kafka ships no slf4j binding and would be silent.
const POM = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sagactl</groupId><artifactId>local-kafka</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`;

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    if (await access(path.join(dir, cmd), constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

async function requireJava(): Promise<void> {
  if (!(await onPath('java'))) throw new Error(JAVA_HINT);
  // Kafka 4.x brokers refuse to start on Java < 17, and the failure in broker.log is cryptic.
  const out = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${out.stderr}${out.stdout}`);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : 0;
  if (major < 17) throw new Error(`${JAVA_HINT} (found ${m ? m[0] : 'no version'})`);
}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(process.env.SAGACTL_CACHE_DIR || path.join(base, 'sagactl'), `kafka-${KAFKA_VERSION}`);
}

export async function resolveKafkaJars(log: (line: string) => void = () => {}): Promise<string> {
  const root = cacheDir();
  const libs = path.join(root, 'libs');
  if (await exists(path.join(libs, MARKER))) return libs;
  if (!(await onPath('mvn'))) throw new Error(MVN_HINT);

  await mkdir(root, { recursive: true });
  // A private work dir, renamed into place at the end, so a concurrent process never sees a half-filled libs dir.
  const work = await mkdtemp(path.join(root, 'resolve-'));
  try {
    await writeFile(path.join(work, 'pom.xml'), POM);
    log(`resolving Apache Kafka ${KAFKA_VERSION} jars with Maven into ${libs}`);
    const started = Date.now();
    try {
      await run('mvn', ['-q', '-B', '-f', path.join(work, 'pom.xml'), 'dependency:copy-dependencies',
        `-DoutputDirectory=${path.join(work, 'libs')}`], { maxBuffer: 64 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`mvn could not resolve the Kafka ${KAFKA_VERSION} jars (is Maven Central reachable?); ${explain(`${e.stdout ?? ''}${e.stderr ?? e.message}`, 20)}`);
    }
    await writeFile(path.join(work, 'libs', MARKER), `${new Date().toISOString()}\n`);
    try {
      await rename(path.join(work, 'libs'), libs);
    } catch (err) {
      // Another process won the race; its libs dir is complete because rename is atomic.
      if (!(await exists(path.join(libs, MARKER)))) throw err;
    }
    log(`resolved Kafka jars in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return libs;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// The kernel may hand the same free port to two calls in a row, once the first probe closed it: a broker
// port and its controller port, or two services started side by side, would then collide.
const handedOut = new Set<number>();

/** A port free on 127.0.0.1 now, and never one this process was given before. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = await probePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not allocate a port not handed out before');
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not allocate a port'))));
    });
  });
}

/** True when a broker answers a metadata request; `options` carries TLS and SASL for a secured listener. */
export async function brokerAnswers(brokers: string, timeoutMs = 3000, options: KafkaOptions = {}): Promise<boolean> {
  // retries: 0 because the client's default (3 retries, 1 s apart) would outlive a short probe timeout.
  const admin = new Admin({ clientId: 'sagactl-probe', ...connectionOptions(brokers.split(','), options), retries: 0, connectTimeout: timeoutMs, timeout: timeoutMs });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      admin.metadata({ topics: [], forceUpdate: true }).then(() => true, () => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); }),
    ]);
  } finally {
    clearTimeout(timer);
    // Not awaited: closing a socket that is still connecting can take as long as the connect timeout.
    admin.close().catch(() => {});
  }
}

function serverProperties(port: number, controllerPort: number, logDir: string, advertisedPort = port): string {
  return `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controllerPort}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${advertisedPort}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${logDir}
# One node: the defaults (RF 3, min ISR 2) make consumer groups and transactions hang forever.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Saves 3 s on every first group join.
group.initial.rebalance.delay.ms=0
# Topics are created explicitly, so a typo fails loudly instead of creating a stray topic.
auto.create.topics.enable=false
# Speed-ups borrowed from Kafka's own test utilities.
offsets.topic.num.partitions=1
num.network.threads=2
background.threads=2
log.cleaner.dedupe.buffer.size=2097152
log.initial.task.delay.ms=100
`;
}

// The last lines of a failed JVM are shutdown noise or stack frames; the first error line says why.
export function explain(output: string, tailLines: number): string {
  const lines = output.trimEnd().split('\n');
  const i = lines.findIndex((l) => /\b(ERROR|FATAL)\b|^Exception in thread/.test(l));
  const cause = i >= 0 ? `first error:\n${lines.slice(i, i + 2).join('\n')}\n` : '';
  return `${cause}last ${tailLines} lines of output:\n${lines.slice(-tailLines).join('\n')}`;
}

export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer().unref();
    srv.once('error', () => resolve(true));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(false)));
  });
}

export async function startLocalKafka(opts: StartOptions = {}): Promise<LocalKafka> {
  const log = opts.log ?? (() => {});
  const port = opts.port ?? 9092;
  const controllerPort = opts.controllerPort ?? 9093;
  for (const p of [port, controllerPort]) {
    if (await portInUse(p)) throw new Error(`127.0.0.1:${p} is already in use (another Kafka broker?); pass free ports or set KAFKA_BROKERS to use that broker`);
  }
  const cp = await kafkaClasspath(log);

  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'sagactl-kafka-')));
  await mkdir(dataDir, { recursive: true });
  const props = path.join(dataDir, 'server.properties');
  const brokerLog = path.join(dataDir, 'broker.log');
  // A subdirectory so Kafka's log dir holds only its own files, not our properties and log.
  await writeFile(props, serverProperties(port, controllerPort, path.join(dataDir, 'kraft'), opts.advertisedPort));

  const started = Date.now();
  try {
    // A kept dataDir restarts as the same cluster: formatting it again would need its old id.
    if (!(await exists(path.join(dataDir, 'kraft', 'meta.properties')))) await formatStorage(cp, props, await newClusterId(cp));
  } catch (err) {
    if (!opts.keepData) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  const node = spawnKafka(cp, props, brokerLog, ['-Xms256m', '-Xmx768m'], log);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    await node.stop();
    if (!opts.keepData) await rm(dataDir, { recursive: true, force: true });
  })());

  const brokers = `127.0.0.1:${port}`;
  try {
    await waitUntilAnswers(node, brokerLog, () => brokerAnswers(brokers, 1000));
  } catch (err) {
    await stop();
    throw err;
  }
  log(`Kafka ${KAFKA_VERSION} broker ${node.pid} answering on ${brokers} after ${((Date.now() - started) / 1000).toFixed(1)} s (log: ${brokerLog})`);
  return { brokers, pid: node.pid, dataDir, stop };
}

/** Java checked and the jars resolved: the classpath every Kafka JVM of ours runs with. */
export async function kafkaClasspath(log: (line: string) => void = () => {}): Promise<string> {
  await requireJava();
  return path.join(await resolveKafkaJars(log), '*'); // expanded by the JVM itself, no shell involved
}

async function storageTool(cp: string, args: string[]): Promise<string> {
  try {
    return (await run('java', ['-cp', cp, 'kafka.tools.StorageTool', ...args])).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`Kafka StorageTool failed; ${explain(`${e.stdout ?? ''}${e.stderr ?? e.message}`, 10)}`);
  }
}

export async function newClusterId(cp: string): Promise<string> {
  return (await storageTool(cp, ['random-uuid'])).trim().split('\n').pop() ?? '';
}

/** Formats one node's log dirs; `extra` takes e.g. `--add-scram` for users that must exist from the start. */
export async function formatStorage(cp: string, props: string, clusterId: string, extra: string[] = []): Promise<void> {
  await storageTool(cp, ['format', '-t', clusterId, '-c', props, '-g', ...extra]);
}

export interface KafkaProcess {
  pid: number;
  /** Set once the JVM has exited: its code or signal. */
  readonly exit: string | undefined;
  /** Resolves when the JVM has exited. */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL after 20 s; idempotent. */
  stop(): Promise<void>;
  /** Sends `signal` (SIGKILL: a crash) and waits for the JVM to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** One kafka.Kafka JVM, its output appended to `logFile`; it dies with this process. */
export function spawnKafka(cp: string, props: string, logFile: string, heap: string[], log: (line: string) => void = () => {}): KafkaProcess {
  // A file rather than a pipe: nobody drains a pipe once we return, and a full pipe would stall the broker.
  const fd = openSync(logFile, 'a');
  const child = spawn('java', [...heap, '-XX:+UseG1GC', '-cp', cp, 'kafka.Kafka', props],
    { detached: false, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => { exit = `${code ?? signal}`; resolve(); });
    child.once('error', (err) => { exit = err.message; resolve(); });
  });
  // child.kill() signals only this child's PID and is a no-op once it has been reaped, so a reused PID is never hit.
  const killOnExit = () => { child.kill('SIGKILL'); }; // synchronous: 'exit' handlers cannot await
  process.on('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    if (exit === undefined) {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      // Cleared afterwards: a pending 20 s timer would keep the caller's process alive after the broker is gone.
      await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 20_000); })]);
      clearTimeout(timer);
      if (exit === undefined) {
        log(`Kafka broker ${child.pid} ignored SIGTERM for 20 s; sending SIGKILL`);
        child.kill('SIGKILL');
        await exited;
      }
    }
  })());
  if (child.pid === undefined) {
    process.off('exit', killOnExit);
    throw new Error('could not spawn java for the Kafka broker');
  }
  const kill = async (signal: NodeJS.Signals) => {
    if (exit === undefined) child.kill(signal);
    await exited;
  };
  return { pid: child.pid, get exit() { return exit; }, exited, stop, kill };
}

/** Polls `answers` until it says yes; fails with the broker log's first error if the JVM dies or 60 s pass. */
export async function waitUntilAnswers(node: KafkaProcess, logFile: string, answers: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await answers())) {
    if (node.exit !== undefined || Date.now() > deadline) {
      const why = node.exit !== undefined ? `exited with code ${node.exit}` : `did not answer within ${timeoutMs / 1000} s`;
      throw new Error(`Kafka broker ${why}; ${explain(await readFile(logFile, 'utf8').catch(() => ''), 30)}`);
    }
    await sleep(250);
  }
}
