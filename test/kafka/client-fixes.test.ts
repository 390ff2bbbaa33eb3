import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

import { describe, expect, it } from 'vitest'

describe('the installed Kafka client', () => {
  it('carries our read_committed filter (scripts/patch-platformatic-kafka.mjs), not the one 1.35 ships', () => {
    const entry = createRequire(import.meta.url).resolve('@platformatic/kafka')
    const consumer = fs.readFileSync(path.join(path.dirname(entry), 'clients', 'consumer', 'consumer.js'), 'utf8')
    expect(consumer).toContain('#filterUncommittedMessages(response) { /* sagactl: read_committed filter */')
    expect(consumer).not.toContain('abortedRanges.get(batch.producerId)[1] = batch.firstOffset;')
  })
})
