import { randomUUID } from 'node:crypto'

import type { Envelope } from '../../../src/envelope.js'
import type { DecideContext, Decision, StateStore } from '../../../src/runtime/role.js'
import type { ApiDeps } from '../../../src/services/api/app.js'
import { ORDER_SCOPE, type OrderView } from '../../../src/services/api/orders.js'

/**
 * The api's side of the runtime without Kafka or SQLite: state as JSON rows, committed only when
 * the work returns (as the runtime's transaction), and the messages it would publish.
 */
export class MemoryApi {
  readonly rows = new Map<string, string>()
  readonly published: Envelope[] = []
  now = Date.parse('2030-01-01T00:00:00Z')

  readonly store: StateStore = {
    get: <T>(scope: string, key: string): T | undefined => {
      const row = this.rows.get(`${scope}/${key}`)
      return row === undefined ? undefined : (JSON.parse(row) as T)
    },
    put: (scope: string, key: string, value: unknown): void => {
      this.rows.set(`${scope}/${key}`, JSON.stringify(value))
    },
  }

  readonly deps: ApiDeps = {
    submit: (work: (store: StateStore, ctx: DecideContext) => Decision): Decision => {
      const staged = new Map<string, string>()
      const tx: StateStore = {
        get: <T>(scope: string, key: string): T | undefined => {
          const row = staged.get(`${scope}/${key}`) ?? this.rows.get(`${scope}/${key}`)
          return row === undefined ? undefined : (JSON.parse(row) as T)
        },
        put: (scope, key, value) => {
          staged.set(`${scope}/${key}`, JSON.stringify(value))
        },
      }
      const decision = work(tx, { now: this.now, newId: randomUUID, random: Math.random })
      if (decision.reject) throw new Error(decision.reject)
      for (const [k, v] of staged) this.rows.set(k, v)
      this.published.push(...(decision.messages ?? []).map((m) => m.envelope))
      return decision
    },
    readOrder: (orderId) => this.store.get<OrderView>(ORDER_SCOPE, orderId),
    health: async () => ({ ok: true as const }),
  }
}
