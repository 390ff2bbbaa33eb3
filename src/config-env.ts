// Reading one typed value from the environment, each failure a ConfigError that names the variable:
// shared by every group of settings, so each reports a bad value the same way.

export class ConfigError extends Error {}

export type Env = Record<string, string | undefined>

export function int(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer ≥ ${min}, got "${raw}"`)
  }
  return value
}

/** Within `max` too: a bound above 2^53 - 1 would let rounded amounts through again. */
export function bounded(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = int(env, name, fallback, min)
  if (value > max) throw new ConfigError(`${name} must be at most ${max}, got "${env[name]}"`)
  return value
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** "24h", "90m", "30s", "500ms", "7d"; a bare number is milliseconds, like the *_MS variables. Undefined unless ≥ 1 ms. */
export function parseDuration(raw: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim())
  const value = match ? Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']! : NaN
  return Number.isSafeInteger(value) && value >= 1 ? value : undefined
}

export function duration(env: Env, name: string, fallbackMs: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallbackMs
  const value = parseDuration(raw)
  if (value === undefined) throw new ConfigError(`${name} must be a duration ≥ 1 ms such as 24h, 30m, 45s or 500ms, got "${raw}"`)
  return value
}

export function rate(env: Env, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(`${name} must be a number between 0 and 1, got "${raw}"`)
  }
  return value
}

export function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase()
  if (raw === undefined || raw === '') return fallback
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true
  if (['0', 'false', 'no', 'off'].includes(raw)) return false
  throw new ConfigError(`${name} must be true or false, got "${env[name]}"`)
}
