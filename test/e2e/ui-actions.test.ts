import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'

import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { BIN, System, waitFor } from './harness.js'

// A retry wait long enough to act inside it, and never reached by a test.
const RETRY_WAIT_MS = '60000'
const TOKEN = 'e2e-token-7c0f3a9d51b2'

interface Ui {
  child: ChildProcess
  /** Where the test reaches it: 127.0.0.1 and its port, whatever address it is bound to. */
  url: string
  out: () => string
}

describe('sagactl ui: actions on the page (cancel, pause, resume, replay), on the real broker, and who may take them', () => {
  let system: System
  let browser: Browser
  const uis: Ui[] = []

  async function startUi(args: string[] = [], env: Record<string, string> = {}): Promise<Ui> {
    const port = await freePort()
    const child = spawn(process.execPath, [BIN, 'ui', '--port', String(port), ...args], { env: { ...system.processEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    const ui = { child, url: `http://127.0.0.1:${port}`, out: () => out }
    uis.push(ui)
    await waitFor(() => /listening at http:\S+/.test(out) && /actions (on|off)/.test(out), `sagactl ui ${args.join(' ')} to listen (${out})`, 30_000)
    return ui
  }
  async function newPage(): Promise<Page> {
    return browser.newPage({ viewport: { width: 1400, height: 800 } })
  }
  const statusOn = (page: Page) => page.locator('#saga-status').textContent({ timeout: 1000 }).catch(() => null)
  const waitingRetry = (orderId: string) => waitFor(() => system.logs('orchestrator').some((l) => l.order_id === orderId && l.status === 'waiting_retry'), `order ${orderId} to wait for its retry`)
  async function sagaWaitingForRetry(): Promise<string> {
    await system.chaos('payment', '--fail', '1')
    const { order_id } = await system.postOrder()
    await waitingRetry(order_id)
    return order_id
  }
  const post = async (ui: Ui, path: string, body: unknown = {}, headers: Record<string, string> = {}) => {
    const response = await fetch(`${ui.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  beforeAll(async () => {
    system = await System.start(undefined, { SAGA_RETRY_MIN_DELAY_MS: RETRY_WAIT_MS, SAGA_RETRY_MAX_DELAY_MS: RETRY_WAIT_MS })
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] })
  })
  afterAll(async () => {
    await browser?.close()
    await Promise.all(
      uis.map(async (ui) => {
        if (ui.child.exitCode !== null) return
        ui.child.kill('SIGTERM')
        await new Promise((resolve) => ui.child.once('exit', resolve))
      }),
    )
    await system?.stop()
  })

  let local: Ui

  it('on 127.0.0.1: cancel a saga waiting for its retry, confirm, see the request and the answer, and watch it compensate to cancelled', async () => {
    local = await startUi()
    expect(local.out()).toContain('actions on (loopback, no token)')
    const orderId = await sagaWaitingForRetry()
    const page = await newPage()
    await page.goto(`${local.url}/#saga=${orderId}`)
    await waitFor(async () => (await statusOn(page)) === 'waiting_retry', 'the page to show the saga waiting for its retry', 15_000, 100)

    await page.locator('#saga-actions button[data-action="cancel"]').click()
    const dialog = page.locator('dialog#confirm')
    await waitFor(() => dialog.isVisible(), 'the confirmation dialog', 5_000, 100)
    expect(await page.locator('#confirm-text').textContent()).toContain(orderId)
    // Nothing is asked before the operator confirms.
    expect(await system.typesOf('orderEvents', orderId)).not.toContain('saga.cancel-requested')
    await page.locator('#confirm-reason').fill('operator said stop')
    await page.locator('#confirm-yes').click()

    const seen: string[] = ['waiting_retry']
    await waitFor(
      async () => {
        const status = await statusOn(page)
        if (status && seen.at(-1) !== status) seen.push(status)
        return status === 'cancelled'
      },
      'the page to show the saga cancelled',
      60_000,
      100,
    )
    expect(seen.at(-1)).toBe('cancelled')
    expect(seen.every((s) => ['waiting_retry', 'compensating', 'cancelled'].includes(s))).toBe(true)

    // The record the page says it wrote is the one on order.events, and the answer is the orchestrator's.
    const wrote = page.locator('#action-result .wrote')
    expect(await wrote.count()).toBe(1)
    expect(await wrote.getAttribute('data-type')).toBe('saga.cancel-requested')
    const shownId = await wrote.getAttribute('data-message-id')
    expect(await page.locator('#action-result .answer').getAttribute('data-type')).toBe('saga.cancel-accepted')
    expect(await page.locator('#action-result .answer').textContent()).toContain(shownId!)
    const events = await system.waitForFinal(orderId)
    expect(events.map((e) => e.type)).toEqual(['order.created', 'inventory.reserved', 'payment.failed', 'saga.cancel-requested', 'payment.refunded', 'inventory.reservation-cancelled', 'order.cancelled'])
    expect(events.find((e) => e.type === 'saga.cancel-requested')).toMatchObject({ message_id: shownId, payload: { reason: 'operator said stop', requested_by: 'sagactl ui' } })
    expect(events.at(-1)!.payload.reason).toBe('cancelled by request: operator said stop')
    expect((await system.read('control')).filter((m) => m.message?.causation_id === shownId).map((m) => m.message!.type)).toEqual(['saga.cancel-accepted'])

    // The swimlanes show the undo, and an ended saga offers no action.
    await waitFor(async () => (await page.locator('g.mark[data-kind="final"][data-type="order.cancelled"]').count()) === 1, 'the final mark drawn', 10_000, 100)
    expect(await page.locator('g.mark[data-kind="command"][data-type="refund_payment"][data-compensation="true"]').count()).toBe(1)
    expect(await page.locator('g.mark[data-kind="command"][data-type="cancel_reservation"][data-compensation="true"]').count()).toBe(1)
    expect(await page.locator('#saga-actions button').count()).toBe(0)
    await page.close()
  })

  it('its routes refuse clearly: 404 for an unknown order, 409 for an ended saga (nothing published), 400 for a bad body', async () => {
    const unknown = await post(local, '/api/sagas/no-such-order/cancel')
    expect([unknown.status, unknown.body.error]).toEqual([404, 'Not Found'])
    const { order_id } = await system.postOrder()
    await system.waitForFinal(order_id)
    await waitFor(async () => (await (await fetch(`${local.url}/api/sagas/${order_id}`)).json() as { report?: { status: string } }).report?.status === 'completed', 'the saga completed in the changelog')
    const before = await system.messagesOf('orderEvents', order_id)
    const ended = await post(local, `/api/sagas/${order_id}/cancel`, { reason: 'too late' })
    expect(ended.status).toBe(409)
    expect(ended.body).toMatchObject({ error: 'Conflict', message: `the saga of order ${order_id} has already ended: completed; nothing changed`, wrote: [] })
    const notStuck = await post(local, `/api/sagas/${order_id}/retry`)
    expect([notStuck.status, notStuck.body.message]).toEqual([409, `the saga of order ${order_id} is completed, not stuck: nothing to retry`])
    expect((await post(local, `/api/sagas/${order_id}/cancel`, { reason: 'x'.repeat(501) })).status).toBe(400)
    expect(await system.messagesOf('orderEvents', order_id)).toEqual(before)
  })

  it('pauses a waiting saga from the page and resumes it: each confirmed, each answered, the status following', async () => {
    const orderId = await sagaWaitingForRetry()
    const page = await newPage()
    await page.goto(`${local.url}/#saga=${orderId}`)
    await waitFor(async () => (await statusOn(page)) === 'waiting_retry', 'the page to show the saga waiting', 15_000, 100)
    // Paused, it offers resume and cancel, not pause.
    const act = async (action: string, reason?: string) => {
      const button = page.locator(`#saga-actions button[data-action="${action}"]:not([disabled])`)
      // The panel still shows the previous action until this one starts: wait for this one's title.
      const done = `${await button.textContent()} ${orderId.slice(0, 8)}: done`
      await button.click()
      if (reason !== undefined) await page.locator('#confirm-reason').fill(reason)
      await page.locator('#confirm-yes').click()
      await waitFor(async () => (await page.locator('#action-result h3').textContent({ timeout: 1000 })) === done, `the ${action} to be answered`, 40_000, 100)
    }
    await act('pause', 'address under review')
    expect(await page.locator('#action-result .answer').getAttribute('data-type')).toBe('saga.pause-accepted')
    await waitFor(async () => (await statusOn(page)) === 'paused', 'the page to show the saga paused', 15_000, 100)
    await waitFor(async () => (await page.locator('#saga-actions button').evaluateAll((bs) => bs.map((b) => b.getAttribute('data-action')))).join() === 'cancel,resume', 'resume and cancel offered', 5_000, 100)

    await act('resume')
    expect(await page.locator('#action-result .answer').getAttribute('data-type')).toBe('saga.resume-accepted')
    await waitFor(async () => (await statusOn(page)) === 'waiting_retry', 'the page to show the saga waiting again', 15_000, 100)
    const requests = (await system.messagesOf('orderEvents', orderId)).filter((e) => /^saga\.(pause|resume)-requested$/.test(e.type))
    expect(requests.map((e) => [e.type, e.payload.requested_by])).toEqual([
      ['saga.pause-requested', 'sagactl ui'],
      ['saga.resume-requested', 'sagactl ui'],
    ])
    expect(requests[0]!.payload.reason).toBe('address under review')
    // Not left waiting a minute for its retry.
    await act('cancel')
    await waitFor(async () => (await statusOn(page)) === 'cancelled', 'the saga cancelled', 60_000, 100)
    await page.close()
  })

  it('replays a dead letter from the dead-letters view: confirmed, sent back to its source with its bytes, marked replayed', async () => {
    const orderId = randomUUID()
    const bogus = JSON.stringify({ command_type: 'teleport_goods', order_id: orderId, saga_id: randomUUID(), message_id: randomUUID(), payload: { attempt: 1 } })
    await system.bus.publish([{ topic: system.topics.paymentCommands, key: orderId, value: bogus }])
    const page = await newPage()
    await page.goto(`${local.url}/#dead-letters`)
    const row = page.locator('tr.dead-letter', { hasText: orderId })
    await waitFor(async () => (await row.count()) === 1, 'the dead letter listed on the page', 30_000, 200)
    const id = (await row.getAttribute('data-id'))!

    await row.locator('button[data-action="replay"]').click()
    expect(await page.locator('#confirm-text').textContent()).toContain(id)
    await page.locator('#confirm-yes').click()
    await waitFor(async () => /: done$/.test((await page.locator('#action-result h3').textContent({ timeout: 1000 })) ?? ''), 'the replay to be done', 15_000, 100)
    expect(await page.locator('#action-result .wrote').evaluateAll((blocks) => blocks.map((b) => b.getAttribute('data-topic')))).toEqual([system.topics.paymentCommands, system.topics.control])

    const back = (await system.read('paymentCommands')).filter((m) => m.record.headers['x-dlq-replayed-from'] === id)
    expect(back.map((m) => m.record.value!.toString())).toEqual([bogus])
    const replayedRow = page.locator(`tr.dead-letter[data-id="${id}"]`)
    await waitFor(async () => (await replayedRow.locator('button[data-action="replay"]').textContent({ timeout: 1000 })) === 'replay again', 'the row to show it replayed', 15_000, 200)
    // Its cause is not fixed: payment reads it again and dead-letters it again, a new letter.
    await waitFor(async () => (await row.count()) === 2, 'the replayed command dead-lettered again', 30_000, 200)
    await page.close()
  })

  let held = ''

  it('bound to 0.0.0.0 without SAGA_UI_TOKEN: read-only; the same saga has a cancel button on loopback and none here, and a POST is refused', async () => {
    const open = await startUi(['--host', '0.0.0.0'])
    expect(open.out()).toMatch(/actions off: the page is bound to 0\.0\.0\.0/)
    held = await sagaWaitingForRetry()
    expect(await (await fetch(`${open.url}/api/actions`)).json()).toMatchObject({ enabled: false, token_required: false })

    const page = await newPage()
    await page.goto(`${local.url}/#saga=${held}`)
    await waitFor(async () => (await statusOn(page)) === 'waiting_retry', 'the loopback page to show the saga', 15_000, 100)
    expect(await page.locator('#saga-actions button[data-action="cancel"]').count()).toBe(1)

    await page.goto(`${open.url}/#saga=${held}`)
    await waitFor(async () => (await statusOn(page)) === 'waiting_retry', 'the read-only page to show the saga', 15_000, 100)
    // The status and the buttons are drawn in one pass: the status shown means the buttons would be too.
    expect(await page.locator('#saga-actions button').count()).toBe(0)
    expect(await page.locator('#actions-off').isVisible()).toBe(true)
    await page.close()

    for (const [path, headers] of [[`/api/sagas/${held}/cancel`, {}], [`/api/sagas/${held}/cancel`, { 'x-sagactl-token': TOKEN }], [`/api/sagas/${held}/retry`, {}]] as const) {
      const refused = await post(open, path, {}, headers)
      expect(refused.status, path).toBe(403)
      expect(refused.body.message).toMatch(/actions are off/)
    }
    expect(await system.typesOf('orderEvents', held)).not.toContain('saga.cancel-requested')
  })

  it('bound to 0.0.0.0 with SAGA_UI_TOKEN: refused without the token (401) or with a wrong one (403); the operator pastes it into the page and the cancel goes through', async () => {
    const guarded = await startUi(['--host', '0.0.0.0'], { SAGA_UI_TOKEN: TOKEN })
    expect(guarded.out()).toContain('actions on, each with SAGA_UI_TOKEN')
    expect((await post(guarded, `/api/sagas/${held}/cancel`)).status).toBe(401)
    expect((await post(guarded, `/api/sagas/${held}/cancel`, {}, { 'x-sagactl-token': `${TOKEN}x` })).status).toBe(403)
    expect(await system.typesOf('orderEvents', held)).not.toContain('saga.cancel-requested')

    const page = await newPage()
    await page.goto(`${guarded.url}/#saga=${held}`)
    await waitFor(async () => (await statusOn(page)) === 'waiting_retry', 'the guarded page to show the saga', 15_000, 100)
    expect(await page.locator('#token-box').isVisible()).toBe(true)
    const cancelOnce = async () => {
      await page.locator('#saga-actions button[data-action="cancel"]:not([disabled])').click()
      await page.locator('#confirm-yes').click()
    }
    await cancelOnce()
    await waitFor(async () => /refused \(401/.test((await page.locator('#action-result h3').textContent({ timeout: 1000 })) ?? ''), 'the page to say the token is missing', 15_000, 100)

    await page.locator('#token').fill(TOKEN)
    await page.locator('#token').dispatchEvent('change')
    await cancelOnce()
    await waitFor(async () => (await statusOn(page)) === 'cancelled', 'the page to show the saga cancelled', 60_000, 100)
    const events = await system.waitForFinal(held)
    expect(events.filter((e) => e.type === 'saga.cancel-requested').map((e) => e.payload.requested_by)).toEqual(['sagactl ui'])
    expect(events.at(-1)!.type).toBe('order.cancelled')
    // The token stays in this tab's sessionStorage, never in a cookie.
    expect(await page.context().cookies()).toEqual([])
    await page.close()
  })
})
