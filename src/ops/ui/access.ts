import { createHash, timingSafeEqual } from 'node:crypto'

/** The header the page sends the operator's token in: a header, so no other site's page can send it for them. */
export const TOKEN_HEADER = 'x-sagactl-token'

export interface ActionAccess {
  /** The action routes accept writes, and the page shows its buttons. */
  enabled: boolean
  /** Each action must carry SAGA_UI_TOKEN in the x-sagactl-token header. */
  token_required: boolean
  /** Why the page is read-only, when it is. */
  reason?: string
}

/** A loopback address literal: only this machine's own processes can reach a server bound to it. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  return /^127(\.\d{1,3}){3}$/.test(bare) || bare === '::1' || bare === 'localhost'
}

/**
 * Bound to loopback, the operator is on this machine, and actions need no token unless one is set.
 * Bound anywhere else, anyone who reaches the port reaches the page: without a token it stays read-only.
 */
export function actionAccess(host: string, token: string | undefined): ActionAccess {
  if (token) return { enabled: true, token_required: true }
  if (isLoopback(host)) return { enabled: true, token_required: false }
  return { enabled: false, token_required: false, reason: `the page is bound to ${host}, not to loopback, and SAGA_UI_TOKEN is not set: it is read-only` }
}

// Hashing first makes both sides one length, so neither the comparison nor its length check tells an attacker anything.
const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

export function tokenMatches(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given))
}

/** host:port of an Origin header; undefined for "null" (a sandboxed or file page) or anything unparsable. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}

export type Refusal = { statusCode: 401 | 403; message: string }

/**
 * Whether an action request may go on; the refusal otherwise. `hostHeader` and `origin` are the
 * request's: without a token, only a page served from a loopback name may act, so another site
 * cannot act through the operator's browser (a cross-site POST, or a name rebound to 127.0.0.1).
 */
export function refusalOf(access: ActionAccess, expectedToken: string | undefined, request: { token: string | undefined; hostHeader: string | undefined; origin: string | undefined }): Refusal | undefined {
  if (!access.enabled) return { statusCode: 403, message: `actions are off: ${access.reason ?? 'read-only'}; set SAGA_UI_TOKEN to allow them` }
  if (request.origin !== undefined && hostOf(request.origin) !== request.hostHeader) return { statusCode: 403, message: `actions are taken from this page only, not from ${request.origin}` }
  if (access.token_required) {
    if (!request.token) return { statusCode: 401, message: `this action needs the token (SAGA_UI_TOKEN) in the ${TOKEN_HEADER} header` }
    if (!tokenMatches(expectedToken ?? '', request.token)) return { statusCode: 403, message: `the ${TOKEN_HEADER} header does not match SAGA_UI_TOKEN` }
    return undefined
  }
  const name = (request.hostHeader ?? '').replace(/:\d+$/, '')
  if (!isLoopback(name)) return { statusCode: 403, message: `without SAGA_UI_TOKEN, actions are taken at a loopback address only, not at ${request.hostHeader ?? 'no host'}` }
  return undefined
}
