/** What an open-loop run says about keeping up with its rate, beyond latency percentiles. */
export interface SustainedVerdict {
  kept_up: boolean
  /** Why not, one reason per failed check; empty when it kept up. */
  reasons: string[]
  rate: number
  /** Orders per second the bench actually sent: if it fell behind, the run did not offer the rate. */
  submit_rate: number
  grace_s: number
  /** Sagas finished (final event published) by the end of submission plus the grace period. */
  finished_in_time: number
  finished_in_time_ratio: number
  inflight: {
    max: number
    at_end_of_submission: number
    /** Least-squares growth of submitted − finished, per second, over the last three quarters of submission. */
    slope_per_s: number
    /** The slope above which in flight may count as growing: max(2 % of the rate, 0.5/s). */
    growth_limit_per_s: number
    /** slope × that window's length: growing also needs this to exceed one second's worth of orders. */
    growth: number
  }
}

export interface SustainedInput {
  rate: number
  /** When each order was sent, ms on one clock. */
  sentAt: number[]
  /** When each finished saga's final event was published, ms on the same clock. */
  finishedAt: number[]
  graceMs: number
  /** [ms, submitted − finished] sampled during the run. */
  inflight: [number, number][]
}

export const MIN_FINISHED_RATIO = 0.99
const MIN_SUBMIT_SHARE = 0.98

/**
 * Kept up means: the bench offered the rate, at least 99 % of the orders finished within the run
 * plus the grace period, and the number in flight did not keep growing (its trend is above 2 % of
 * the rate and adds up to more than a second of orders). A system slower than its
 * load can still show fair percentiles over a short run; a growing backlog gives it away.
 */
export function sustainedVerdict(input: SustainedInput): SustainedVerdict {
  const sent = [...input.sentAt].sort((a, b) => a - b)
  const first = sent[0] ?? 0
  const last = sent.at(-1) ?? 0
  const submitRate = sent.length > 1 && last > first ? ((sent.length - 1) * 1000) / (last - first) : input.rate
  const deadline = last + input.graceMs
  const inTime = input.finishedAt.filter((t) => t <= deadline).length
  const ratio = sent.length > 0 ? inTime / sent.length : 0
  const windowStart = first + (last - first) / 4
  const slope = slopePerSecond(input.inflight.filter(([t]) => t >= windowStart && t <= last))
  const limit = Math.max(0.02 * input.rate, 0.5)
  const growth = (slope * (last - windowStart)) / 1000
  // A pause that recovers tilts a short window's trend; a backlog short of one second's orders is
  // not yet a system falling behind.
  const growing = slope > limit && growth > input.rate
  const reasons: string[] = []
  if (submitRate < MIN_SUBMIT_SHARE * input.rate) reasons.push(`the bench sent ${round(submitRate)}/s, short of the ${input.rate}/s asked: the load generator fell behind`)
  if (ratio < MIN_FINISHED_RATIO) reasons.push(`${inTime} of ${sent.length} sagas (${round(ratio * 100)} %) finished within the run + ${input.graceMs / 1000} s, below ${MIN_FINISHED_RATIO * 100} %`)
  if (growing) reasons.push(`in flight grew steadily during submission: ${round(slope)} sagas/s (limit ${round(limit)}/s), ${Math.round(growth)} over the measured window`)
  return {
    kept_up: reasons.length === 0,
    reasons,
    rate: input.rate,
    submit_rate: round(submitRate),
    grace_s: input.graceMs / 1000,
    finished_in_time: inTime,
    finished_in_time_ratio: Math.round(ratio * 10000) / 10000,
    inflight: {
      max: Math.max(0, ...input.inflight.map(([, n]) => n)),
      at_end_of_submission: [...input.inflight].reverse().find(([t]) => t <= last)?.[1] ?? 0,
      slope_per_s: round(slope),
      growth_limit_per_s: round(limit),
      growth: Math.round(growth),
    },
  }
}

/** Least-squares slope of [ms, value] points, per second; 0 with fewer than two distinct times. */
export function slopePerSecond(points: [number, number][]): number {
  if (points.length < 2) return 0
  const n = points.length
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0)
  if (sxx === 0) return 0
  return (points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx) * 1000
}

function round(v: number): number {
  return Math.round(v * 100) / 100
}
