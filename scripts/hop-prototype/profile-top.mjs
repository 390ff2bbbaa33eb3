// Self time of a .cpuprofile (node --cpu-prof), grouped by package/file and by function.
// Usage: node profile-top.mjs out/prof/CPU.….cpuprofile [topN]
import { readFileSync } from 'node:fs'

const [file, topArg] = process.argv.slice(2)
const top = Number(topArg ?? 25)
const prof = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const self = new Map()
const dt = prof.timeDeltas
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0))
const total = [...self.values()].reduce((a, b) => a + b, 0)
const group = (url) => {
  if (!url) return '(native/vm)'
  const m = /node_modules\/(@[^/]+\/[^/]+|[^/]+)\/(?:dist\/)?(.*)$/.exec(url)
  if (m) return `${m[1]}: ${m[2].split('/').slice(0, 2).join('/')}`
  if (url.startsWith('node:')) return url
  return url.replace(/^file:\/\/.*\//, '')
}
const files = new Map(); const fns = new Map()
for (const [id, us] of self) {
  const n = byId.get(id); const cf = n.callFrame
  const g = cf.functionName === '(idle)' || cf.functionName === '(program)' || cf.functionName === '(garbage collector)' ? cf.functionName : group(cf.url)
  files.set(g, (files.get(g) ?? 0) + us)
  const fn = `${cf.functionName || '(anon)'} ${group(cf.url)}:${cf.lineNumber + 1}`
  fns.set(fn, (fns.get(fn) ?? 0) + us)
}
const busy = total - (files.get('(idle)') ?? 0)
const show = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`).join('\n')
console.log(`wall ${(total / 1e6).toFixed(1)} s, busy (not idle) ${(busy / 1000).toFixed(0)} ms\n\n-- by file --\n${show(files)}\n\n-- by function --\n${show(fns)}`)
