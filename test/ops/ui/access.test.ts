import { describe, expect, it } from 'vitest'

import { actionAccess, isLoopback, refusalOf, tokenMatches } from '../../../src/ops/ui/access.js'

describe('who may act on the ui page', () => {
  it('loopback is 127.0.0.0/8, ::1 and localhost; anything else is not', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) expect(isLoopback(host), host).toBe(true)
    for (const host of ['0.0.0.0', '::', '10.0.0.7', '192.168.1.2', 'localhost.evil.example', '127.0.0.1.evil.example', '']) expect(isLoopback(host), host).toBe(false)
  })

  it('actions: on loopback without a token; anywhere with one; nowhere else', () => {
    expect(actionAccess('127.0.0.1', undefined)).toEqual({ enabled: true, token_required: false })
    expect(actionAccess('127.0.0.1', 't')).toEqual({ enabled: true, token_required: true })
    expect(actionAccess('0.0.0.0', 't')).toEqual({ enabled: true, token_required: true })
    expect(actionAccess('0.0.0.0', undefined)).toMatchObject({ enabled: false, token_required: false })
    expect(actionAccess('10.0.0.7', '')).toMatchObject({ enabled: false })
  })

  it('compares tokens whole: a prefix, a longer string or another case does not match', () => {
    expect(tokenMatches('abc123', 'abc123')).toBe(true)
    for (const given of ['abc12', 'abc1234', 'ABC123', '', ' abc123']) expect(tokenMatches('abc123', given), given).toBe(false)
  })

  it('a request from the page itself goes through; a token sent for the wrong server, or none, does not', () => {
    const local = actionAccess('127.0.0.1', undefined)
    expect(refusalOf(local, undefined, { token: undefined, hostHeader: '127.0.0.1:3900', origin: 'http://127.0.0.1:3900' })).toBeUndefined()
    expect(refusalOf(local, undefined, { token: undefined, hostHeader: 'localhost:3900', origin: undefined })).toBeUndefined()
    expect(refusalOf(local, undefined, { token: undefined, hostHeader: '127.0.0.1:3900', origin: 'http://127.0.0.1:3901' })?.statusCode).toBe(403)
    const guarded = actionAccess('0.0.0.0', 'tok')
    expect(refusalOf(guarded, 'tok', { token: 'tok', hostHeader: 'ops.example:3900', origin: 'http://ops.example:3900' })).toBeUndefined()
    expect(refusalOf(guarded, 'tok', { token: undefined, hostHeader: 'ops.example:3900', origin: undefined })?.statusCode).toBe(401)
  })
})
