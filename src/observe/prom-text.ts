/** One sample of the Prometheus text exposition format (0.0.4). */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  help: string
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'], counter: [], gauge: [], untyped: [] }

export class PromParseError extends Error {}

// Any case, as Prometheus reads them: prom-client writes "Nan" for a just-started process's event-loop lag.
function parseValue(raw: string, line: number): number {
  const word = raw.toLowerCase()
  if (word === '+inf' || word === 'inf') return Infinity
  if (word === '-inf') return -Infinity
  if (word === 'nan') return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new PromParseError(`line ${line}: "${raw}" is not a number`)
  return Number(raw)
}

/** Label set `{a="x",b="y"}` starting at `text[0] === '{'`; returns the labels and the rest of the line. */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {}
  let i = 1
  for (;;) {
    while (text[i] === ' ') i++
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) }
    const eq = text.indexOf('=', i)
    if (eq < 0) throw new PromParseError(`line ${line}: label without "="`)
    const name = text.slice(i, eq).trim()
    if (!LABEL.test(name)) throw new PromParseError(`line ${line}: bad label name "${name}"`)
    if (name in labels) throw new PromParseError(`line ${line}: label "${name}" twice`)
    if (text[eq + 1] !== '"') throw new PromParseError(`line ${line}: label value of "${name}" not quoted`)
    let value = ''
    let j = eq + 2
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j]
        if (next === 'n') value += '\n'
        else if (next === '\\' || next === '"') value += next
        else throw new PromParseError(`line ${line}: bad escape "\\${next ?? ''}" in label "${name}"`)
      } else value += text[j]
    }
    if (j >= text.length) throw new PromParseError(`line ${line}: unterminated value of label "${name}"`)
    labels[name] = value
    i = j + 1
    if (text[i] === ',') i++
    else if (text[i] !== '}') throw new PromParseError(`line ${line}: expected "," or "}" after label "${name}"`)
  }
}

/**
 * A strict parser of the text format: every sample must belong to a family declared by # TYPE
 * (with its histogram/summary suffixes), names and labels must be well formed, values numbers.
 */
export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const owner = new Map<string, Family>()
  const lines = text.split('\n')
  lines.forEach((raw, index) => {
    const n = index + 1
    const line = raw.trimEnd()
    if (line === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) return // a plain comment
      const [, kind, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string]
      if (!NAME.test(name)) throw new PromParseError(`line ${n}: bad metric name "${name}"`)
      let family = families.get(name)
      if (!family) {
        family = { name, type: 'untyped', help: '', samples: [] }
        families.set(name, family)
      }
      if (kind === 'HELP') family.help = rest
      else {
        if (!TYPES.has(rest)) throw new PromParseError(`line ${n}: unknown type "${rest}"`)
        if (family.samples.length > 0) throw new PromParseError(`line ${n}: TYPE of ${name} after its samples`)
        family.type = rest as Family['type']
        owner.set(name, family)
        for (const suffix of SUFFIXES[rest]!) owner.set(name + suffix, family)
      }
      return
    }
    const nameEnd = line.search(/[{ ]/)
    if (nameEnd <= 0) throw new PromParseError(`line ${n}: no value`)
    const name = line.slice(0, nameEnd)
    if (!NAME.test(name)) throw new PromParseError(`line ${n}: bad metric name "${name}"`)
    const family = owner.get(name)
    if (!family) throw new PromParseError(`line ${n}: sample ${name} of no declared family`)
    let labels: Record<string, string> = {}
    let rest = line.slice(nameEnd)
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, n))
    const parts = rest.trim().split(/ +/)
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') throw new PromParseError(`line ${n}: expected "value [timestamp]", got "${rest.trim()}"`)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new PromParseError(`line ${n}: bad timestamp "${parts[1]}"`)
    if (family.type === 'histogram' && name.endsWith('_bucket') && labels.le === undefined) throw new PromParseError(`line ${n}: bucket without "le"`)
    family.samples.push({ name, labels, value: parseValue(parts[0]!, n) })
  })
  return families
}

/** Samples named `name` whose labels include `match`. */
export function samples(families: Map<string, Family>, name: string, match: Record<string, string> = {}): Sample[] {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
  return (family?.samples ?? []).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
}

/** The sum of those samples' values; 0 when there are none. */
export function total(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number {
  return samples(families, name, match).reduce((sum, s) => sum + s.value, 0)
}
