import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { pino } from 'pino'

import { openDatabase, type Db } from '../../src/db/database.js'
import type { RoleHandler } from '../../src/runtime/role.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { changelogTopic, topicNames } from '../../src/topics.js'
import { MemoryBus } from './memory-bus.js'
import { orderSaga } from '../../src/order-saga/saga.js'

export interface GroupedRuntime {
  dir: string
  db: Db
  bus: MemoryBus
  runtime: Runtime
  /** Stops the runtime and removes its file. */
  close(): Promise<void>
}

/** A role in a group on a real SQLite file, Kafka in memory, owning one partition of its input. */
export async function groupedRuntime(role: RoleHandler, partition: number, clock?: () => number): Promise<GroupedRuntime> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-grouped-'))
  const db = openDatabase(path.join(dir, 'orchestrator.db'))
  const bus = new MemoryBus()
  const runtime = new Runtime({ role, db, bus, topics: topicNames('', orderSaga), changelog: changelogTopic('', 'orchestrator'), log: pino({ level: 'silent' }), groupId: 'g', ...(clock ? { clock } : {}) })
  await runtime.start()
  await bus.assign([partition])
  return {
    dir,
    db,
    bus,
    runtime,
    close: async () => {
      await runtime.stop()
      db.$client.close()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
