import { describe, expect, it, vi } from 'vitest'

import type { ConsumedRecord } from '../../src/kafka/port.js'
import type { Outcome } from '../../src/runtime/role.js'
import { Receiver } from '../../src/runtime/receiver.js'

function record(partition: number, offset: number): ConsumedRecord {
  return { topic: 'order.events', partition, offset: BigInt(offset), key: null, value: Buffer.from('{}'), headers: {}, timestamp: 0n }
}

/** Records the batches handed to the intake; `prepare` answers when the test says so. */
function fakeIntake() {
  const batches: { records: ConsumedRecord[]; prepared: unknown[] }[] = []
  const waiting: { record: ConsumedRecord; answer: (value: unknown) => void }[] = []
  return {
    batches,
    waiting,
    intake: {
      handleRecords: vi.fn((records: ConsumedRecord[], prepared: unknown[] = []): Outcome[] => {
        batches.push({ records, prepared })
        return records.map(() => 'processed' as const)
      }),
      prepare: (r: ConsumedRecord) => new Promise<unknown>((answer) => waiting.push({ record: r, answer })),
    },
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Waits until `probe` holds, turn by turn, for at most `turns` turns of the event loop. */
async function until(probe: () => boolean, turns = 100): Promise<void> {
  for (let i = 0; i < turns && !probe(); i++) await nextTurn()
  expect(probe()).toBe(true)
}

describe('the receiver: how consumed records reach the intake', () => {
  it('given records that arrive in one turn, then they are handled together, in the next one', async () => {
    const { intake, batches } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: false, concurrency: 8, stopping: () => false, fatal: vi.fn() })
    for (let offset = 0; offset < 3; offset++) receiver.receive(record(0, offset))
    expect(batches).toEqual([])
    await nextTurn()
    expect(batches.map((b) => b.records.map((r) => r.offset))).toEqual([[0n, 1n, 2n]])
  })

  it('given more records than one transaction takes, then they are handled in batches of at most 256, in order', async () => {
    const { intake, batches } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: false, concurrency: 8, stopping: () => false, fatal: vi.fn() })
    for (let offset = 0; offset < 600; offset++) receiver.receive(record(0, offset))
    await until(() => batches.length === 3)
    expect(batches.map((b) => b.records.length)).toEqual([256, 256, 88])
    expect(batches.flatMap((b) => b.records.map((r) => Number(r.offset)))).toEqual([...Array(600).keys()])
  })

  it('given a batch whose transaction fails, then the role is told, and the records waiting behind it are dropped', async () => {
    const { intake } = fakeIntake()
    intake.handleRecords.mockImplementationOnce(() => {
      throw new Error('disk gone')
    })
    const fatal = vi.fn()
    const receiver = new Receiver({ intake, lanes: false, concurrency: 8, stopping: () => false, fatal })
    for (let offset = 0; offset < 300; offset++) receiver.receive(record(0, offset))
    await until(() => fatal.mock.calls.length === 1)
    expect(fatal).toHaveBeenCalledWith(new Error('disk gone'))
    for (let i = 0; i < 5; i++) await nextTurn()
    expect(intake.handleRecords).toHaveBeenCalledTimes(1)
  })

  it('given a role that prepares, then each partition is worked one record at a time, in order, and the partitions side by side', async () => {
    const { intake, batches, waiting } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: true, concurrency: 8, stopping: () => false, fatal: vi.fn() })
    for (const r of [record(0, 0), record(0, 1), record(1, 0)]) receiver.receive(r)
    await until(() => waiting.length === 2)
    expect(waiting.map((w) => [w.record.partition, w.record.offset])).toEqual([
      [0, 0n],
      [1, 0n],
    ])
    waiting.shift()!.answer('prepared 0/0')
    await until(() => waiting.length === 2)
    expect(batches).toEqual([{ records: [record(0, 0)], prepared: ['prepared 0/0'] }])
    expect(waiting[1]!.record).toEqual(record(0, 1))
  })

  it('given a partition that left while its record was prepared, then that record is not handled here', async () => {
    const { intake, batches, waiting } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: true, concurrency: 8, stopping: () => false, fatal: vi.fn() })
    receiver.receive(record(3, 0))
    receiver.receive(record(3, 1))
    await until(() => waiting.length === 1)
    receiver.dropped([3])
    waiting.shift()!.answer('late')
    for (let i = 0; i < 5; i++) await nextTurn()
    expect(batches).toEqual([])
    expect(waiting).toEqual([])
  })

  it('given no more than `concurrency` partitions, then no more are worked at once', async () => {
    const { intake, waiting } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: true, concurrency: 2, stopping: () => false, fatal: vi.fn() })
    for (let p = 0; p < 4; p++) receiver.receive(record(p, 0))
    await until(() => waiting.length === 2)
    for (let i = 0; i < 5; i++) await nextTurn()
    expect(waiting.map((w) => w.record.partition)).toEqual([0, 1])
  })

  it('given the lanes full, then the consumer waits, and goes on once they have drained to half', async () => {
    const { intake, waiting } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: true, concurrency: 1, stopping: () => false, fatal: vi.fn() })
    let paused: void | Promise<void> = undefined
    for (let offset = 0; offset < 1025 && !paused; offset++) paused = receiver.receive(record(0, offset))
    expect(paused).toBeInstanceOf(Promise)
    let resumed = false
    void (paused as Promise<void>).then(() => (resumed = true))
    // 1,024 wait behind the record being prepared; each one handled lets the next in: the consumer
    // goes on once fewer than 512 wait, after the 513th.
    for (let answered = 0; answered < 512; answered++) {
      await until(() => waiting.length === 1)
      waiting.shift()!.answer(undefined)
    }
    await until(() => waiting.length === 1)
    expect(resumed).toBe(false)
    waiting.shift()!.answer(undefined)
    await until(() => resumed)
  })

  it('given a receiver closed, then the consumer waiting for room goes on, and no lane takes more work', async () => {
    const { intake, waiting } = fakeIntake()
    const receiver = new Receiver({ intake, lanes: true, concurrency: 1, stopping: () => false, fatal: vi.fn() })
    let paused: void | Promise<void> = undefined
    for (let offset = 0; offset < 1025 && !paused; offset++) paused = receiver.receive(record(0, offset))
    await until(() => waiting.length === 1)
    const closed = receiver.close()
    await paused
    waiting.shift()!.answer(undefined)
    await closed
    for (let i = 0; i < 5; i++) await nextTurn()
    expect(waiting).toEqual([])
    expect(intake.handleRecords).toHaveBeenCalledTimes(1)
  })
})
