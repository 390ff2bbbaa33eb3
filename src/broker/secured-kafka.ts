import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import type { KafkaOptions } from '../kafka/connection.js'
import { brokerAnswers, formatStorage, freePort, kafkaClasspath, KAFKA_VERSION, newClusterId, portInUse, spawnKafka, waitUntilAnswers, type KafkaProcess, type LocalKafka } from './local-kafka.js'

const run = promisify(execFile)

export const SECURED_MECHANISM = 'SCRAM-SHA-512'

export interface SecuredKafka extends LocalKafka {
  /** PEM of the CA that signed the broker's certificate: what KAFKA_SSL_CA_FILE takes. */
  caFile: string
  mechanism: typeof SECURED_MECHANISM
  users: Record<string, string>
}

export interface SecuredOptions {
  /** SCRAM users created at format time, name → password. */
  users: Record<string, string>
  log?: (line: string) => void
}

async function keytool(args: string[]): Promise<void> {
  try {
    await run('keytool', args)
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`keytool ${args[0]} failed: ${(e.stdout ?? '') + (e.stderr ?? e.message)}`)
  }
}

export interface CertificateAuthority {
  /** PKCS12 store holding the CA's key, to sign with. */
  keystore: string
  /** The CA certificate in PEM, for a Node client's `ca`. */
  pem: string
  password: string
}

/** A throwaway CA made with keytool (it ships with every JDK that can run the broker). */
export async function createCertificateAuthority(dir: string, name = 'sagactl test CA'): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true })
  const password = randomBytes(12).toString('hex')
  const keystore = path.join(dir, 'ca.p12')
  const pem = path.join(dir, 'ca.pem')
  await keytool(['-genkeypair', '-alias', 'ca', '-keyalg', 'RSA', '-keysize', '2048', '-dname', `CN=${name}`, '-ext', 'bc:c', '-ext', 'KU=keyCertSign,cRLSign', '-validity', '2', '-keystore', keystore, '-storetype', 'PKCS12', '-storepass', password])
  await keytool(['-exportcert', '-rfc', '-alias', 'ca', '-keystore', keystore, '-storepass', password, '-file', pem])
  return { keystore, pem, password }
}

/**
 * A broker keystore (key + certificate for 127.0.0.1 and localhost, signed by `ca`) and a
 * truststore holding the CA, both PKCS12 with one password.
 */
async function createBrokerStores(dir: string, ca: CertificateAuthority): Promise<{ keystore: string; truststore: string; password: string }> {
  const password = randomBytes(12).toString('hex')
  const keystore = path.join(dir, 'broker.p12')
  const truststore = path.join(dir, 'truststore.p12')
  const csr = path.join(dir, 'broker.csr')
  const cert = path.join(dir, 'broker.pem')
  await keytool(['-genkeypair', '-alias', 'broker', '-keyalg', 'RSA', '-keysize', '2048', '-dname', 'CN=localhost', '-validity', '2', '-keystore', keystore, '-storetype', 'PKCS12', '-storepass', password])
  await keytool(['-certreq', '-alias', 'broker', '-keystore', keystore, '-storepass', password, '-file', csr])
  // The client connects to 127.0.0.1, so the certificate must name that address, not only a host name.
  await keytool(['-gencert', '-alias', 'ca', '-keystore', ca.keystore, '-storepass', ca.password, '-infile', csr, '-outfile', cert, '-rfc', '-validity', '2', '-ext', 'SAN=ip:127.0.0.1,dns:localhost', '-ext', 'KU=digitalSignature,keyEncipherment', '-ext', 'EKU=serverAuth,clientAuth'])
  await keytool(['-importcert', '-alias', 'ca', '-file', ca.pem, '-keystore', keystore, '-storepass', password, '-noprompt'])
  await keytool(['-importcert', '-alias', 'broker', '-file', cert, '-keystore', keystore, '-storepass', password, '-noprompt'])
  await keytool(['-importcert', '-alias', 'ca', '-file', ca.pem, '-keystore', truststore, '-storetype', 'PKCS12', '-storepass', password, '-noprompt'])
  return { keystore, truststore, password }
}

function securedProperties(o: { port: number; controllerPort: number; logDir: string; stores: { keystore: string; truststore: string; password: string }; broker: { name: string; password: string } }): string {
  return `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${o.controllerPort}
listeners=SASL_SSL://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}
advertised.listeners=SASL_SSL://127.0.0.1:${o.port}
controller.listener.names=CONTROLLER
# The broker reaches itself (e.g. transaction markers) through the secured listener too, as its own SCRAM user.
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=${SECURED_MECHANISM}
sasl.mechanism.inter.broker.protocol=${SECURED_MECHANISM}
listener.name.sasl_ssl.${SECURED_MECHANISM.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${o.broker.name}" password="${o.broker.password}";
ssl.keystore.type=PKCS12
ssl.keystore.location=${o.stores.keystore}
ssl.keystore.password=${o.stores.password}
ssl.key.password=${o.stores.password}
ssl.truststore.type=PKCS12
ssl.truststore.location=${o.stores.truststore}
ssl.truststore.password=${o.stores.password}
ssl.client.auth=none
log.dirs=${o.logDir}
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

/**
 * One broker whose only client listener is SASL_SSL with SCRAM-SHA-512, as managed clusters
 * (MSK, Aiven, Strimzi) offer: a fresh CA, a broker certificate for 127.0.0.1 signed by it, and
 * SCRAM users written at format time (KRaft has no other way to have them from the start).
 */
export async function startSecuredKafka(opts: SecuredOptions): Promise<SecuredKafka> {
  const log = opts.log ?? (() => {})
  const cp = await kafkaClasspath(log)
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sagactl-secured-'))
  let node: KafkaProcess | undefined
  const stop = async (): Promise<void> => {
    await node?.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
  const started = Date.now()
  try {
    const port = await freePort()
    const controllerPort = await freePort()
    for (const p of [port, controllerPort]) if (await portInUse(p)) throw new Error(`127.0.0.1:${p} is already in use`)
    const ca = await createCertificateAuthority(path.join(dataDir, 'ca'))
    const stores = await createBrokerStores(dataDir, ca)
    const broker = { name: 'sagactl-broker', password: randomBytes(12).toString('hex') }
    const props = path.join(dataDir, 'server.properties')
    await writeFile(props, securedProperties({ port, controllerPort, logDir: path.join(dataDir, 'kraft'), stores, broker }))
    const users = { ...opts.users, [broker.name]: broker.password }
    const scram = Object.entries(users).flatMap(([name, password]) => ['--add-scram', `${SECURED_MECHANISM}=[name=${name},password=${password}]`])
    await formatStorage(cp, props, await newClusterId(cp), scram)

    const brokerLog = path.join(dataDir, 'broker.log')
    node = spawnKafka(cp, props, brokerLog, ['-Xms128m', '-Xmx384m'], log)
    const brokers = `127.0.0.1:${port}`
    // Ready means ready for a client like ours: TLS verified against the CA, and a SCRAM login.
    const probe: KafkaOptions = { tls: { ca: await readFile(ca.pem, 'utf8'), rejectUnauthorized: true, files: { ca: ca.pem } }, sasl: { mechanism: SECURED_MECHANISM, username: broker.name, password: broker.password } }
    await waitUntilAnswers(node, brokerLog, () => brokerAnswers(brokers, 1000, probe))
    log(`Kafka ${KAFKA_VERSION} SASL_SSL (${SECURED_MECHANISM}) broker ${node.pid} answering on ${brokers} after ${((Date.now() - started) / 1000).toFixed(1)} s (log: ${brokerLog})`)
    return { brokers, pid: node.pid, dataDir, stop, caFile: ca.pem, mechanism: SECURED_MECHANISM, users: opts.users }
  } catch (error) {
    await stop()
    throw error
  }
}
