import { randomUUID } from 'node:crypto'

import { Producer, ProduceAcks } from '@platformatic/kafka'
import { afterAll, describe, expect, inject, it } from 'vitest'

import { PlatformaticBus } from '../../src/kafka/platformatic.js'
import { waitFor } from './harness.js'

describe('reading a topic that aborted transactions wrote to (read_committed)', () => {
  const brokers = inject('brokers')
  const bus = new PlatformaticBus([brokers], 'sagactl-test-rc')
  const topic = `t${randomUUID().slice(0, 8)}.read-committed`
  afterAll(async () => {
    await bus.close()
  })

  it('sees only committed records, through read and tail, though one producer aborted several transactions in a row and markers fall anywhere', async () => {
    await bus.ensureTopics([{ name: topic, partitions: 1 }])
    const producer = new Producer({ clientId: 'rc', bootstrapBrokers: [brokers], idempotent: true, acks: ProduceAcks.ALL, transactionalId: `${topic}.tx` })
    const send = async (values: string[], commit: boolean): Promise<void> => {
      const tx = await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })
      await tx.send({ messages: values.map((v) => ({ topic, key: Buffer.from('k'), value: Buffer.from(v), partition: 0 })) })
      if (commit) await tx.commit()
      else await tx.abort()
    }
    try {
      await send(['c1'], true)
      for (let i = 0; i < 4; i++) await send([`a${i}-1`, `a${i}-2`], false)
      await send(['c2', 'c3'], true)
      await send(['a9'], false)
      await send(['c4'], true)
    } finally {
      await producer.close()
    }
    const seen: { offset: bigint; value: string }[] = []
    await bus.read({ topic, handler: (r) => void seen.push({ offset: r.offset, value: r.value!.toString() }) })
    expect(seen.map((r) => r.value)).toEqual(['c1', 'c2', 'c3', 'c4'])
    // From every offset: a response may begin inside an aborted transaction, or at its abort
    // marker, with the transaction's data left behind in the previous one.
    const [end] = await bus.endOffsets(topic)
    for (let from = 1n; from < end!; from++) {
      const later: string[] = []
      await bus.read({ topic, fromOffset: from, handler: (r) => void later.push(r.value!.toString()) })
      expect(later, `read from offset ${from}`).toEqual(seen.filter((r) => r.offset >= from).map((r) => r.value))
    }
    // A tail reads through the client's message stream, which makes fetches of its own.
    const tailed: string[] = []
    let failed: Error | undefined
    const tail = await bus.tail({ topic, fromOffsets: [0n], handler: (r) => void tailed.push(r.value!.toString()), onError: (error) => (failed = error) })
    try {
      await waitFor(() => failed ?? tailed.includes('c4'), 'c4 through the tail')
    } finally {
      await tail.close()
    }
    expect(failed).toBeUndefined()
    expect(tailed).toEqual(['c1', 'c2', 'c3', 'c4'])
  })
})
