// Reads out/r<round>-<variant>.json (written by run-all.sh) and prints markdown tables:
// one row per run, then one row per variant with the median and the range over its rounds.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const RUN_ORDER = ['0', 'a100', 'b10', 'b100', '0w', 'a1000'] // the order run-all.sh was given
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), process.argv[2] ?? 'out')
const runs = readdirSync(dir).filter((f) => /^r\d+-.+\.json$/.test(f)).map((f) => {
  const [, round, name] = /^r(\d+)-(.+)\.json$/.exec(f)
  return { round: Number(round), name, ...JSON.parse(readFileSync(path.join(dir, f), 'utf8')) }
}).sort((a, b) => a.round - b.round || RUN_ORDER.indexOf(a.name) - RUN_ORDER.indexOf(b.name))

const ORDER = ['0', '0w', 'a100', 'a1000', 'b10', 'b100']
const DESC = {
  0: '(0) today: tx per partition batch, fetch 10 ms / 64 KiB',
  '0w': '(0w) tx per partition batch, fetch 500 ms / 1 B',
  a100: '(a) no tx, offsets every 100 ms',
  a1000: '(a) no tx, offsets every 1 s',
  b10: '(b) one tx per instance, commit 10 ms',
  b100: '(b) one tx per instance, commit 100 ms',
}
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–')
const median = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN }
const range = (xs, d) => { const s = xs.filter(Number.isFinite); return s.length > 1 ? `${f(Math.min(...s), d)}–${f(Math.max(...s), d)}` : f(s[0], d) }

const cols = [
  ['p50 ms @200/s', (r) => r.paced.p50, 1],
  ['p99 ms @200/s', (r) => r.paced.p99, 0],
  ['burst rec/s', (r) => r.burst.per_s, 0],
  ['CPU ms/rec @200/s relay+broker', (r) => r.paced.relay_ms_per_rec + r.paced.broker_ms_per_rec, 2],
  ['(relay / broker)', null],
  ['CPU ms/rec burst relay+broker', (r) => r.burst.relay_ms_per_rec + r.burst.broker_ms_per_rec, 3],
  ['(relay / broker) ', null],
  ['idle % core relay+broker', (r) => r.idle.relay_pct + r.idle.broker_pct, 1],
  ['(relay / broker)  ', null],
]
const split = {
  '(relay / broker)': [(r) => r.paced.relay_ms_per_rec, (r) => r.paced.broker_ms_per_rec, 2],
  '(relay / broker) ': [(r) => r.burst.relay_ms_per_rec, (r) => r.burst.broker_ms_per_rec, 3],
  '(relay / broker)  ': [(r) => r.idle.relay_pct, (r) => r.idle.broker_pct, 1],
}
const cell = (rs, name, get, d) => {
  if (get) return rs.length > 1 ? `${f(median(rs.map(get)), d)} (${range(rs.map(get), d)})` : f(get(rs[0]), d)
  const [a, b, dd] = split[name]
  return `${f(median(rs.map(a)), dd)} / ${f(median(rs.map(b)), dd)}`
}

const table = (title, keep) => {
  console.log(`### ${title}\n`)
  console.log(`| variant | runs | ${cols.map((c) => c[0]).join(' | ')} |`)
  console.log(`|---|---|${cols.map(() => '---').join('|')}|`)
  for (const name of ORDER) {
    const rs = runs.filter((r) => r.name === name && keep(r))
    if (!rs.length) continue
    console.log(`| ${DESC[name] ?? name} | ${rs.length} | ${cols.map(([c, g, d]) => cell(rs, c, g, d)).join(' | ')} |`)
  }
  console.log('')
}
table('Per variant: median over every run (range in brackets)', () => true)
const LOAD = 8
table(`Only the runs that started at a 1-minute load below ${LOAD} (the quieter part of the session)`, (r) => r.load1_at_start < LOAD)
console.log(`\n### Every run, in the order run\n`)
console.log('| round | variant | load1 at start | p50 | p90 | p99 | max | seen | burst rec/s | burst p99 ms | CPU ms/rec @200/s relay / broker / driver | CPU ms/rec burst relay / broker / driver | idle % relay / broker / driver | transactions | CONCURRENT_TRANSACTIONS retries | ms per commit |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of runs) {
  const s = r.relayStats ?? {}
  console.log(`| ${r.round} | ${r.name} | ${f(r.load1_at_start, 1)} | ${f(r.paced.p50)} | ${f(r.paced.p90)} | ${f(r.paced.p99, 0)} | ${f(r.paced.max, 0)} | ${r.paced.seen}/${r.paced.records} | ${f(r.burst.per_s, 0)} | ${f(r.burst.p99, 0)} | ${f(r.paced.relay_ms_per_rec, 2)} / ${f(r.paced.broker_ms_per_rec, 2)} / ${f(r.paced.driver_ms_per_rec, 2)} | ${f(r.burst.relay_ms_per_rec, 3)} / ${f(r.burst.broker_ms_per_rec, 3)} / ${f(r.burst.driver_ms_per_rec, 3)} | ${f(r.idle.relay_pct)} / ${f(r.idle.broker_pct)} / ${f(r.idle.driver_pct)} | ${s.transactions ?? '–'} | ${s.concurrentRetries ?? '–'} | ${s.transactions ? f(s.commitMs / s.transactions, 0) : '–'} |`)
}
