import fs from 'node:fs'
import os from 'node:os'

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]', os.hostname()])

/**
 * The process listening on a broker address of this machine, from /proc: the socket's inode in
 * /proc/net/tcp{,6}, then the process holding that socket. Undefined elsewhere, for another host,
 * or for a process of another user (its file descriptors are not readable).
 */
export function pidListeningOn(address: string): number | undefined {
  const match = /^(.*):(\d+)$/.exec(address.trim())
  if (!match || !LOOPBACK.has(match[1]!) || os.platform() !== 'linux') return undefined
  const port = Number(match[2]).toString(16).toUpperCase().padStart(4, '0')
  const inodes = new Set<string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = fs.readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const row of text.split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/)
      // cols[1] is address:port, cols[3] the state (0A = LISTEN), cols[9] the inode
      if (cols[1]?.endsWith(`:${port}`) && cols[3] === '0A' && cols[9]) inodes.add(`socket:[${cols[9]}]`)
    }
  }
  if (inodes.size === 0) return undefined
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      for (const fd of fs.readdirSync(`/proc/${entry}/fd`)) {
        if (inodes.has(fs.readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry)
      }
    } catch {
      // another user's process, or gone meanwhile
    }
  }
  return undefined
}

/** The executable and main class or script of a process, for saying which one was measured. */
export function describeProcess(pid: number): string {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    const main = args.find((a) => /^(kafka\.Kafka|io\.confluent|.*redpanda)/.test(a)) ?? args.at(-1) ?? ''
    return `${args[0]?.split('/').at(-1) ?? '?'} ${main}`.trim()
  } catch {
    return 'unknown'
  }
}
