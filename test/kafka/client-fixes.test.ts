import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

import { describe, expect, it } from 'vitest'

describe('the installed Kafka client', () => {
  it('carries the fix of platformatic/kafka#393: an abort marker without its transaction in the fetch no longer throws', () => {
    const entry = createRequire(import.meta.url).resolve('@platformatic/kafka')
    const consumer = fs.readFileSync(path.join(path.dirname(entry), 'clients', 'consumer', 'consumer.js'), 'utf8')
    expect(consumer).not.toContain('abortedRanges.get(batch.producerId)[1] = batch.firstOffset;')
    expect(consumer).toContain('if (range) range[1] = batch.firstOffset;')
  })
})
