import { createHash } from 'node:crypto'

/**
 * Ids derived from the message being handled (name-based, UUID v5 layout). Handling the same
 * message again — a replay, a rebuilt database — yields the same outgoing message_ids and
 * effect ids, so every consumer downstream recognises the repeat.
 */
export function derivedIds(seed: string): () => string {
  let n = 0
  return () => {
    const h = createHash('sha1').update(`${seed}#${n++}`).digest()
    h[6] = (h[6]! & 0x0f) | 0x50
    h[8] = (h[8]! & 0x3f) | 0x80
    const hex = h.subarray(0, 16).toString('hex')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
}

/**
 * A random sequence drawn from the message being handled, for the same reason as derivedIds:
 * handling it again (a new owner, a zombie's late copy, a replay) draws the same numbers, so a
 * participant's success and a retry's delay come out the same, and so do the messages they shape.
 */
export function derivedRandom(seed: string): () => number {
  let n = 0
  return () => {
    const h = createHash('sha256').update(`${seed}#random#${n++}`).digest()
    // 48 bits: exactly representable in a double, uniform in [0, 1).
    return h.readUIntBE(0, 6) / 2 ** 48
  }
}
