import { Writable } from 'node:stream'

import { describe, expect, it } from 'vitest'

import { createLogger } from '../src/log.js'

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''))
      done()
    },
  })
  return { stream, lines }
}

/**
 * Every `"key":` of a line, repeats kept. JSON.parse would hide a repeat (the last one wins); inside
 * a string a quote is escaped, so an unescaped `"key":` after `{` or `,` is a key.
 */
function keysOf(line: string): string[] {
  return [...line.matchAll(/[{,]"([^"\\]+)":/g)].map((m) => m[1]!)
}

describe('the JSON log lines of a role', () => {
  it('given a line that names its role again, when written, then the line has one "role" key, the role', () => {
    const { stream, lines } = capture()
    const log = createLogger('inventory', { SAGA_LOG_PRETTY: 'false' }, { destination: stream })

    log.info({ role: 'inventory', brokers: '127.0.0.1:9092' }, 'inventory started')
    log.child({ component: 'retention' }).warn({ role: 'inventory' }, 'pruned')

    expect(lines).toHaveLength(2)
    for (const line of lines) {
      expect(keysOf(line).filter((k) => k === 'role')).toEqual(['role'])
      expect(JSON.parse(line)).toMatchObject({ role: 'inventory', name: 'inventory' })
    }
    expect(JSON.parse(lines[0]!)).toMatchObject({ brokers: '127.0.0.1:9092', msg: 'inventory started' })
    expect(JSON.parse(lines[1]!)).toMatchObject({ component: 'retention', msg: 'pruned' })
  })

  it('given a line with no role, when written, then the role is still on it', () => {
    const { stream, lines } = capture()
    createLogger('orchestrator', { SAGA_LOG_PRETTY: 'false' }, { destination: stream }).info('orchestrator stopping')

    expect(keysOf(lines[0]!).filter((k) => k === 'role')).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ role: 'orchestrator', msg: 'orchestrator stopping' })
  })
})
