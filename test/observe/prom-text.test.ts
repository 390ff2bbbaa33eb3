import { Counter, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'

import { parsePrometheusText, PromParseError, total } from '../../src/observe/prom-text.js'

describe('parsePrometheusText', () => {
  it("reads prom-client's own output: counters, labels with escapes, histogram buckets", async () => {
    const registry = new Registry()
    const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['a'], registers: [registry] })
    c.inc({ a: 'quote " back \\ line\nend' }, 2)
    const h = new Histogram({ name: 'd_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] })
    h.observe(0.5)
    const families = parsePrometheusText(await registry.metrics())
    expect(families.get('x_total')!.samples).toEqual([{ name: 'x_total', labels: { a: 'quote " back \\ line\nend' }, value: 2 }])
    expect(total(families, 'd_seconds_bucket', { le: '0.1' })).toBe(0)
    expect(total(families, 'd_seconds_bucket', { le: '+Inf' })).toBe(1)
    expect(total(families, 'd_seconds_count')).toBe(1)
  })

  it('reads NaN and Inf in any case, as a just-started process\'s default metrics write them ("Nan")', () => {
    const families = parsePrometheusText('# TYPE a gauge\na{k="1"} Nan\na{k="2"} NaN\na{k="3"} +inf\na{k="4"} -Inf')
    expect(families.get('a')!.samples.map((s) => s.value)).toEqual([NaN, NaN, Infinity, -Infinity])
  })

  it.each([
    ['a sample of no declared family', 'y 1'],
    ['a value that is no number', '# TYPE y gauge\ny one'],
    ['an unterminated label value', '# TYPE y gauge\ny{a="b} 1'],
    ['an unquoted label value', '# TYPE y gauge\ny{a=b} 1'],
    ['a bad escape', '# TYPE y gauge\ny{a="\\t"} 1'],
    ['a label given twice', '# TYPE y gauge\ny{a="1",a="2"} 1'],
    ['a bucket without le', '# TYPE y histogram\ny_bucket 1'],
    ['an unknown type', '# TYPE y meter'],
    ['trailing garbage', '# TYPE y gauge\ny 1 2 3'],
  ])('refuses %s', (_what, text) => {
    expect(() => parsePrometheusText(text)).toThrow(PromParseError)
  })
})
