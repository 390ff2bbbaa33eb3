import { parse } from 'yaml'

import type { Saga } from '../saga/define.js'
import { roleNames } from '../saga/derive.js'

// A Compose file cannot be generated at `docker compose up`, so it is written once and checked
// against the saga: a participant it forgets would leave every saga waiting at that step.

export interface ComposeCheck {
  ok: boolean
  file: string
  /** Roles of the saga no service runs (`sagactl start <role>`). */
  missing: string[]
  /** Services that start a role the saga does not have. */
  unknown: string[]
  /** Roles started by more than one service. */
  twice: string[]
}

export function checkCompose(file: string, text: string, saga: Saga): ComposeCheck {
  const doc = (parse(text) ?? {}) as { services?: Record<string, { command?: unknown }> }
  const started = Object.values(doc.services ?? {}).flatMap((s) => (Array.isArray(s.command) && s.command[0] === 'start' && typeof s.command[1] === 'string' ? [s.command[1]] : []))
  const roles: string[] = roleNames(saga)
  const missing = roles.filter((r) => !started.includes(r))
  const unknown = started.filter((r) => !roles.includes(r))
  const twice = roles.filter((r) => started.filter((s) => s === r).length > 1)
  return { ok: missing.length + unknown.length + twice.length === 0, file, missing, unknown, twice }
}

/** A service per role, to paste under `services:` of a file with the `x-role` anchor docker-compose.yml has. */
export function composeServices(saga: Saga): string {
  return roleNames(saga)
    .map((role) => [`  ${role}:`, '    <<: *role', `    command: ["start", "${role}"]`, ...(role === 'api' ? ['    ports: ["3000:3000"]'] : [])].join('\n'))
    .join('\n')
}

export function renderComposeCheck(c: ComposeCheck): string {
  if (c.ok) return `${c.file}: every role of the saga runs, once`
  return [
    `${c.file} does not run the saga's roles:`,
    ...c.missing.map((r) => `  missing: no service runs \`sagactl start ${r}\``),
    ...c.unknown.map((r) => `  unknown: a service runs \`sagactl start ${r}\`, which the saga does not have`),
    ...c.twice.map((r) => `  twice: more than one service runs \`sagactl start ${r}\` (use replicas)`),
  ].join('\n')
}
