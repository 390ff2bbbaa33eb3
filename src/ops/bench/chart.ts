export interface Bucket {
  second: number
  completed: number
  p50: number
  p99: number
}

/** A self-contained SVG: throughput bars (right axis) and p50/p99 latency lines (left axis) per second. */
export function renderChart(buckets: Bucket[], title: string): string {
  const W = 900
  const H = 420
  const m = { l: 70, r: 70, t: 40, b: 50 }
  const w = W - m.l - m.r
  const h = H - m.t - m.b
  const maxT = Math.max(1, ...buckets.map((b) => b.second + 1))
  const maxLat = niceMax(Math.max(1, ...buckets.map((b) => b.p99)))
  const maxThr = niceMax(Math.max(1, ...buckets.map((b) => b.completed)))
  const x = (s: number) => m.l + (s / maxT) * w
  const yl = (v: number) => m.t + h - (v / maxLat) * h
  const yr = (v: number) => m.t + h - (v / maxThr) * h
  const bw = Math.max(1, w / maxT - 1)
  const bars = buckets.map((b) => `<rect x="${x(b.second).toFixed(1)}" y="${yr(b.completed).toFixed(1)}" width="${bw.toFixed(1)}" height="${(m.t + h - yr(b.completed)).toFixed(1)}" fill="#cfe3f7"/>`).join('')
  const line = (key: 'p50' | 'p99', color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${buckets.filter((b) => b.completed > 0).map((b) => `${(x(b.second) + bw / 2).toFixed(1)},${yl(b[key]).toFixed(1)}`).join(' ')}"/>`
  const ticks = [0, 0.25, 0.5, 0.75, 1]
  const grid = ticks
    .map((t) => `<line x1="${m.l}" x2="${m.l + w}" y1="${yl(t * maxLat)}" y2="${yl(t * maxLat)}" stroke="#eee"/><text x="${m.l - 8}" y="${yl(t * maxLat) + 4}" text-anchor="end">${Math.round(t * maxLat)}</text><text x="${m.l + w + 8}" y="${yr(t * maxThr) + 4}">${Math.round(t * maxThr)}</text>`)
    .join('')
  const xt = Array.from({ length: 6 }, (_, i) => Math.round((i * maxT) / 5))
    .map((s) => `<text x="${x(s)}" y="${m.t + h + 18}" text-anchor="middle">${s}</text>`)
    .join('')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>
${grid}${bars}${line('p50', '#2b7a2b')}${line('p99', '#c0392b')}
<line x1="${m.l}" x2="${m.l + w}" y1="${m.t + h}" y2="${m.t + h}" stroke="#333"/>
${xt}
<text x="${m.l + w / 2}" y="${H - 12}" text-anchor="middle">seconds since the first submission (by completion time)</text>
<text transform="translate(18 ${m.t + h / 2}) rotate(-90)" text-anchor="middle">latency, ms (submission → final event)</text>
<text transform="translate(${W - 16} ${m.t + h / 2}) rotate(90)" text-anchor="middle">completed sagas per second</text>
<g transform="translate(${m.l + 10} ${m.t + 8})"><rect width="12" height="12" fill="#cfe3f7"/><text x="18" y="10">completed/s</text><line x1="110" x2="130" y1="6" y2="6" stroke="#2b7a2b" stroke-width="2"/><text x="136" y="10">p50</text><line x1="170" x2="190" y1="6" y2="6" stroke="#c0392b" stroke-width="2"/><text x="196" y="10">p99</text></g>
</svg>
`
}

function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v))
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p
  return 10 * p
}

function escape(s: string): string {
  return s.replace(/[<&>]/g, (c) => ({ '<': '&lt;', '&': '&amp;', '>': '&gt;' })[c]!)
}
