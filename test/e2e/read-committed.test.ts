import { randomUUID } from 'node:crypto'

import { Producer, ProduceAcks } from '@platformatic/kafka'
import { afterAll, describe, expect, inject, it } from 'vitest'

import { PlatformaticBus } from '../../src/kafka/platformatic.js'

describe('reading a topic that aborted transactions wrote to (read_committed)', () => {
  const brokers = inject('brokers')
  const bus = new PlatformaticBus([brokers], 'sagactl-test-rc')
  const topic = `t${randomUUID().slice(0, 8)}.read-committed`
  afterAll(async () => {
    await bus.close()
  })

  it('sees only committed records, though one producer aborted several transactions in a row and markers fall anywhere', async () => {
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
    const seen: string[] = []
    await bus.read({ topic, handler: (r) => void seen.push(r.value!.toString()) })
    expect(seen).toEqual(['c1', 'c2', 'c3', 'c4'])
    // From an offset inside the aborted run: the response starts mid-transaction.
    const later: string[] = []
    await bus.read({ topic, fromOffset: 3n, handler: (r) => void later.push(r.value!.toString()) })
    expect(later).toEqual(['c2', 'c3', 'c4'])
  })
})
