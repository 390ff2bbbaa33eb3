// Shared by probe.mjs and hop.mjs: the broker started by broker.mjs, its CPU, topics, stats.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Admin } from '@platformatic/kafka'

const here = path.dirname(fileURLToPath(import.meta.url))

export function brokerInfo() {
  return JSON.parse(readFileSync(path.join(here, 'broker.json'), 'utf8'))
}

const TICK_MS = 1000 / 100 // getconf CLK_TCK = 100 on this box

/** utime + stime of a process, in ms, from /proc/<pid>/stat (fields 14 and 15). */
export function procCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14 → index 11, stime field 15 → index 12
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

export function selfCpuMs() {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

export async function createTopics(brokers, specs) {
  const admin = new Admin({ clientId: 'hop-admin', bootstrapBrokers: [brokers] })
  try {
    for (const s of specs) {
      await admin.createTopics({ topics: [s.name], partitions: s.partitions, replicas: 1, configs: s.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [] })
    }
    // Wait until every partition has a leader.
    for (let i = 0; i < 50; i++) {
      const md = await admin.metadata({ topics: specs.map((s) => s.name), forceUpdate: true })
      if (specs.every((s) => md.topics.get(s.name)?.partitionsCount === s.partitions)) break
      await sleep(100)
    }
  } finally {
    await admin.close().catch(() => {})
  }
}

export async function deleteTopics(brokers, names) {
  const admin = new Admin({ clientId: 'hop-admin', bootstrapBrokers: [brokers] })
  try {
    await admin.deleteTopics({ topics: names })
  } catch {
    // best effort
  } finally {
    await admin.close().catch(() => {})
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

export function summary(values) {
  const s = [...values].sort((a, b) => a - b)
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] }
}
