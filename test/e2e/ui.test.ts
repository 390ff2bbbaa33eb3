import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../src/broker/local-kafka.js'
import { BIN, System, waitFor } from './harness.js'

// The README's screenshots are remade only when asked, so that a test run leaves the work tree as it was.
const SHOTS = process.env.SAGA_UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/', import.meta.url)) : `${fs.mkdtempSync(path.join(os.tmpdir(), 'sagactl-ui-'))}/`

interface Drawn {
  lane: string
  kind: string
  type: string
  attempt: string | null
  compensation: string
  at: number
  /** Centre of the shape, in SVG pixels. */
  x: number
}

interface DrawnSpan {
  lane: string
  kind: string
  step: string
  compensation: string
  from: number
  to: number
  x: number
  width: number
}

// Runs in the page (the tests are compiled without DOM types): what the SVG shows, with each shape's position.
const READ_DRAWING = `(() => {
  const svg = document.getElementById('lanes')
  const centre = (g) => { const b = g.firstElementChild.getBBox(); return b.x + b.width / 2 }
  const marks = [...svg.querySelectorAll('g.mark')].map((g) => ({ lane: g.dataset.lane, kind: g.dataset.kind, type: g.dataset.type, attempt: g.dataset.attempt ?? null, compensation: g.dataset.compensation, at: Number(g.dataset.at), x: centre(g) }))
  const spans = [...svg.querySelectorAll('g.span')].map((g) => { const b = g.firstElementChild.getBBox(); return { lane: g.dataset.lane, kind: g.dataset.kind, step: g.dataset.step, compensation: g.dataset.compensation, from: Number(g.dataset.from), to: Number(g.dataset.to), x: b.x, width: b.width } })
  const lanes = [...svg.querySelectorAll('[data-lane-name]')].map((t) => t.textContent)
  return { marks, spans, plot: { width: Number(svg.getAttribute('width')), until: Number(svg.dataset.until), lanes } }
})()`

describe('sagactl ui: the saga list and one saga as swimlanes, live', () => {
  let system: System
  let ui: ChildProcess
  let url = ''
  let browser: Browser
  let page: Page

  beforeAll(async () => {
    // Retry waits long enough to be seen, short enough for a test.
    system = await System.start(undefined, { SAGA_RETRY_MIN_DELAY_MS: '1500', SAGA_RETRY_MAX_DELAY_MS: '2000' })
    const port = await freePort()
    ui = spawn(process.execPath, [BIN, 'ui', '--port', String(port)], { env: system.processEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    ui.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    ui.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    url = await waitFor(() => /listening at (http:\S+)/.exec(out)?.[1], `sagactl ui to listen (${out})`, 30_000)
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] })
    page = await browser.newPage({ viewport: { width: 1400, height: 700 } })
  })
  afterAll(async () => {
    await browser?.close()
    if (ui && ui.exitCode === null) {
      ui.kill('SIGTERM')
      await new Promise((resolve) => ui.once('exit', resolve))
    }
    await system?.stop()
    if (process.env.SAGA_UPDATE_SCREENSHOTS !== '1') fs.rmSync(SHOTS, { recursive: true, force: true })
  })

  it('binds to 127.0.0.1 unless told otherwise', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  let completed = ''
  let cancelled = ''

  it('draws a saga with two retries and a compensation, updating live while it runs', async () => {
    completed = (await system.postOrder()).order_id
    await system.waitForFinal(completed)
    // Three failed charges: the first attempt and two retries, then the charge (nothing to undo) and the reservation are undone.
    await system.chaos('payment', '--fail', '3')
    cancelled = (await system.postOrder()).order_id
    await page.goto(`${url}/#saga=${cancelled}`)

    const seen: string[] = []
    await waitFor(
      async () => {
        const status = await page.locator('#saga-status').textContent({ timeout: 1000 }).catch(() => null)
        if (status && seen.at(-1) !== status) seen.push(status)
        return status === 'cancelled'
      },
      'the page to show the saga cancelled',
      60_000,
      100,
    )
    // The page was open before the end and changed by itself: it showed the saga in flight first.
    expect(seen.length).toBeGreaterThan(1)
    expect(seen.slice(0, -1).every((s) => ['running', 'waiting_retry', 'compensating'].includes(s))).toBe(true)
    expect(seen).toContain('waiting_retry')

    const { marks, spans, plot } = await page.evaluate<{ marks: Drawn[]; spans: DrawnSpan[]; plot: { width: number; until: number; lanes: string[] } }>(READ_DRAWING)
    const pick = (m: Partial<Drawn>) => marks.filter((d) => Object.entries(m).every(([k, v]) => d[k as keyof Drawn] === v))

    expect(plot.lanes).toEqual(['api', 'orchestrator', 'inventory', 'payment', 'notifier'])
    expect(pick({ lane: 'api', type: 'order.created' })).toHaveLength(1)
    expect(pick({ lane: 'orchestrator', kind: 'command', type: 'charge_payment' }).map((m) => m.attempt)).toEqual(['1', '2', '3'])
    expect(pick({ lane: 'payment', type: 'payment.failed' }).map((m) => m.attempt)).toEqual(['1', '2', '3'])
    expect(pick({ lane: 'orchestrator', kind: 'timer', type: 'saga.retry-due' }).map((m) => m.attempt)).toEqual(['2', '3'])
    expect(pick({ lane: 'orchestrator', kind: 'command', type: 'cancel_reservation', compensation: 'true' })).toHaveLength(1)
    expect(pick({ lane: 'inventory', type: 'inventory.reservation-cancelled', compensation: 'true' })).toHaveLength(1)
    expect(pick({ lane: 'orchestrator', kind: 'final', type: 'order.cancelled' })).toHaveLength(1)
    expect(pick({ lane: 'notifier', type: 'order.cancelled' })).toHaveLength(1)
    // The last charge's outcome is unknown to the saga: undone first, with nothing to undo.
    expect(pick({ lane: 'orchestrator', kind: 'command', type: 'refund_payment', compensation: 'true' })).toHaveLength(1)
    expect(pick({ lane: 'payment', type: 'payment.refunded', compensation: 'true' })).toHaveLength(1)

    // Two waits, each the configured retry delay, drawn in the orchestrator's lane.
    const waits = spans.filter((s) => s.kind === 'wait')
    expect(waits.map((w) => [w.lane, w.step])).toEqual([
      ['orchestrator', 'charge_payment'],
      ['orchestrator', 'charge_payment'],
    ])
    for (const w of waits) {
      expect(w.to - w.from).toBeGreaterThanOrEqual(1500)
      expect(w.to - w.from).toBeLessThan(4000)
    }
    expect(spans.filter((s) => s.kind === 'handling' && s.lane === 'inventory' && s.compensation === 'true')).toHaveLength(1)

    // To scale: every shape sits where its time puts it, on one linear axis (LEFT 110, RIGHT 30 in timeline.js).
    const scale = (plot.width - 140) / plot.until
    for (const m of marks) expect(Math.abs(m.x - (110 + m.at * scale)), `${m.type} at ${m.at} ms`).toBeLessThan(1.5)
    for (const w of waits) expect(Math.abs(w.width - (w.to - w.from) * scale)).toBeLessThan(1.5)
    // The waits are the long stretches of this saga: together most of its time.
    expect(waits.reduce((sum, w) => sum + w.width, 0)).toBeGreaterThan(0.4 * (plot.width - 140))

    expect((await page.screenshot({ path: `${SHOTS}ui-timeline.png`, fullPage: true })).length).toBeGreaterThan(10_000)
  })

  it('lists the sagas newest first, and filters them by status', async () => {
    await page.goto(`${url}/`)
    const rows = page.locator('tr.saga')
    await waitFor(async () => (await rows.count()) === 2, 'both sagas in the list', 15_000)
    expect(await rows.evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-order'), tr.getAttribute('data-status')]))).toEqual([
      [cancelled, 'cancelled'],
      [completed, 'completed'],
    ])
    expect((await page.screenshot({ path: `${SHOTS}ui-list.png`, fullPage: true })).length).toBeGreaterThan(5_000)

    await page.selectOption('#status-filter', 'completed')
    await waitFor(async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-order')) === completed, 'the list filtered to completed', 15_000)
    await rows.first().click()
    await waitFor(async () => (await page.locator('#saga-status').textContent({ timeout: 1000 }).catch(() => null)) === 'completed', 'the completed saga to open', 15_000)
    expect(page.url()).toContain(`#saga=${completed}`)
    expect(await page.locator('g.mark[data-type="payment.succeeded"][data-lane="payment"]').count()).toBe(1)
  })
})
