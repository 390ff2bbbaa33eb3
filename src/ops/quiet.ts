import type { MessageBus } from '../kafka/port.js'

/** A consumer group and the topic it reads: quiet needs it to have committed up to the topic's end. */
export interface GroupInput {
  groupId: string
  topic: string
}

/**
 * Waits until the topics have not grown for `stableMs` and every group has committed up to the end
 * of its input, or the timeout passes. Returns whether it got quiet. Growth alone is not enough: a
 * system that stands still (every role rejoining after a broker restart) does not grow either.
 */
export async function waitForQuiet(bus: MessageBus, topics: string[], timeoutMs: number, stableMs = 3000, groups: GroupInput[] = []): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  let last = -1n
  let since = Date.now()
  while (Date.now() < deadline) {
    try {
      let total = 0n
      for (const topic of topics) for (const end of await bus.endOffsets(topic)) total += end
      if (total !== last) {
        last = total
        since = Date.now()
      } else if (Date.now() - since >= stableMs && (await caughtUp(bus, groups))) {
        return true
      }
    } catch {
      // The broker is restarting or busy: ask again.
      last = -1n
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return false
}

/**
 * Every group has committed, on every partition of its input, up to the partition's end. A group
 * that never committed anything is left out: that role is not deployed (or never ran), and waiting
 * for it would only wait out the timeout.
 */
export async function caughtUp(bus: MessageBus, groups: GroupInput[]): Promise<boolean> {
  for (const { groupId, topic } of groups) {
    const [ends, committed] = await Promise.all([bus.endOffsets(topic), bus.committedOffsets(groupId, topic)])
    if (committed.every((c) => c < 0n)) continue
    if (ends.some((end, p) => end > 0n && (committed[p] ?? -1n) < end)) return false
  }
  return true
}
