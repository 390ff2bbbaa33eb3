import type { MessageBus } from '../kafka/port.js'

/** Waits until the topics have not grown for `stableMs`, or the timeout passes. Returns whether it got quiet. */
export async function waitForQuiet(bus: MessageBus, topics: string[], timeoutMs: number, stableMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  let last = -1n
  let since = Date.now()
  while (Date.now() < deadline) {
    let total = 0n
    for (const topic of topics) for (const end of await bus.endOffsets(topic)) total += end
    if (total !== last) {
      last = total
      since = Date.now()
    } else if (Date.now() - since >= stableMs) {
      return true
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return false
}
