// The sagactl timeline page: the saga list, and one saga drawn as swimlanes to scale in time.
// Plain browser JavaScript on purpose: no build step, no framework, served as it is.
'use strict'

const SVG = 'http://www.w3.org/2000/svg'
const LIST_EVERY_MS = 3000
const SAGA_EVERY_MS = 1000
const LANE_HEIGHT = 84
const LEFT = 110
const RIGHT = 30
const TOP = 28

let timer = null
// What the server allows (GET /api/actions); until it answers, no button is drawn.
let access = { enabled: false, token_required: false }
const TOKEN_KEY = 'sagactl-ui-token'

function el(tag, attrs, text) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

function live(on, text) {
  const badge = document.getElementById('live')
  badge.className = on ? 'on' : 'muted'
  badge.textContent = text
}

function schedule(fn, ms) {
  clearTimeout(timer)
  timer = setTimeout(fn, ms)
}

async function getJson(url) {
  const response = await fetch(url, { cache: 'no-store' })
  const body = await response.json()
  if (!response.ok) throw Object.assign(new Error(body.message || response.statusText), { status: response.status })
  return body
}

function showView(id) {
  for (const view of ['list-view', 'saga-view', 'dlq-view']) document.getElementById(view).hidden = view !== id
}

// ---- actions: each asks for confirmation, then shows the records it wrote and the orchestrator's answer

async function loadAccess() {
  try {
    access = await getJson('/api/actions')
  } catch (error) {
    access = { enabled: false, token_required: false, reason: 'could not ask the server: ' + error.message }
  }
  const tokenBox = document.getElementById('token-box')
  tokenBox.hidden = !access.token_required
  const off = document.getElementById('actions-off')
  off.hidden = access.enabled
  off.title = access.reason || ''
  // Kept for this tab only: a token in localStorage or a cookie would outlive the operator's session.
  const input = document.getElementById('token')
  input.value = sessionStorage.getItem(TOKEN_KEY) || ''
  input.addEventListener('change', () => sessionStorage.setItem(TOKEN_KEY, input.value))
}

function confirmAction(text, button, reasonHint) {
  const dialog = document.getElementById('confirm')
  document.getElementById('confirm-text').textContent = text
  document.getElementById('confirm-yes').textContent = button
  document.getElementById('confirm-reason-box').hidden = !reasonHint
  const reason = document.getElementById('confirm-reason')
  reason.value = ''
  reason.placeholder = reasonHint || ''
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes' ? { reason: reason.value } : null), { once: true })
    dialog.returnValue = ''
    dialog.showModal()
  })
}

function recordBlock(title, value, attrs) {
  const block = el('div', attrs)
  block.append(el('div', { class: 'muted' }, title), el('pre', { class: 'mono' }, typeof value === 'string' ? value : JSON.stringify(value, null, 2)))
  return block
}

function showActionResult(title, answer, failed) {
  const panel = document.getElementById('action-result')
  panel.hidden = false
  panel.className = failed ? 'failed' : ''
  panel.replaceChildren(el('h3', {}, title))
  if (!answer) return
  if (answer.message) panel.append(el('p', { class: failed ? 'error' : '' }, answer.message))
  for (const w of answer.wrote || []) {
    const v = w.value || {}
    panel.append(recordBlock('wrote to ' + w.topic + ' (key ' + w.key + ')' + (v.message_id ? ': ' + (v.event_type || v.command_type) + ', message_id ' + v.message_id : ''), v.payload !== undefined ? { message_id: v.message_id, type: v.event_type || v.command_type, payload: v.payload } : w, { class: 'wrote', 'data-topic': w.topic, 'data-message-id': v.message_id || '', 'data-type': v.event_type || v.command_type || '' }))
  }
  if (answer.answer) panel.append(recordBlock("the orchestrator's answer: " + answer.answer.type, { type: answer.answer.type, causation_id: answer.answer.causation_id, payload: answer.answer.payload }, { class: 'answer', 'data-type': answer.answer.type }))
  else if (answer.action && answer.action !== 'replay') panel.append(el('p', { class: 'muted' }, 'no answer from the orchestrator'))
}

async function runAction(url, body, what) {
  const headers = { 'content-type': 'application/json' }
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (access.token_required && token) headers['x-sagactl-token'] = token
  for (const b of document.querySelectorAll('button.action[data-action]')) b.disabled = true
  showActionResult(what + ': asking…', null, false)
  try {
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' })
    const answer = await response.json()
    if (response.ok) showActionResult(what + ': done', answer, false)
    else showActionResult(what + ': refused (' + response.status + ' ' + (answer.error || '') + ')', answer, true)
  } catch (error) {
    showActionResult(what + ': failed', { message: error.message }, true)
  }
  lastActions = ''
  route()
}

// The statuses each action can change; the server and the orchestrator decide in the end.
const SAGA_ACTIONS = [
  { action: 'cancel', label: 'cancel saga', when: ['running', 'waiting_retry', 'paused'], reason: 'optional: order.cancelled carries it', danger: true, text: (id) => 'Cancel the saga of order ' + id + '? It stops retrying, undoes every done step (and the one in flight), newest first, and ends cancelled.' },
  { action: 'pause', label: 'pause', when: ['running', 'waiting_retry'], reason: 'optional: saga show shows it with the pause', danger: false, text: (id) => 'Pause the saga of order ' + id + '? No command and no retry goes out until it is resumed; replies that arrive are recorded.' },
  { action: 'resume', label: 'resume', when: ['paused'], reason: 'optional: recorded with the resume', danger: false, text: (id) => 'Resume the saga of order ' + id + '? It carries on from where it stands; a timer that fell due meanwhile fires at once.' },
  { action: 'retry', label: 'retry', when: ['stuck'], reason: false, danger: false, text: (id) => 'Retry the stuck saga of order ' + id + '? Its pending compensation is sent again, with a fresh budget of attempts.' },
]
let lastActions = ''

function drawSagaActions(report) {
  const box = document.getElementById('saga-actions')
  const offered = access.enabled ? SAGA_ACTIONS.filter((a) => a.when.includes(report.status)) : []
  // Redrawn only when they change, so a poll never swaps a button under the operator's pointer.
  const key = report.order_id + '|' + offered.map((a) => a.action).join(',')
  if (key === lastActions) return
  lastActions = key
  box.replaceChildren(
    ...offered.map((a) => {
      const button = el('button', { class: 'action' + (a.danger ? ' danger' : ''), 'data-action': a.action, type: 'button' }, a.label)
      button.addEventListener('click', async () => {
        const ok = await confirmAction(a.text(report.order_id), a.label, a.reason)
        if (!ok) return
        await runAction('/api/sagas/' + encodeURIComponent(report.order_id) + '/' + a.action, a.reason && ok.reason ? { reason: ok.reason } : {}, a.label + ' ' + report.order_id.slice(0, 8))
      })
      return button
    }),
  )
}

// ---- dead letters

async function showDeadLetters() {
  showView('dlq-view')
  try {
    const { dead_letters: letters } = await getJson('/api/dead-letters')
    document.getElementById('dead-letters').replaceChildren(
      ...letters
        .slice()
        .reverse()
        .map((l) => {
          const row = el('tr', { class: 'dead-letter', 'data-id': l.dead_letter_id })
          const cell = el('td')
          if (access.enabled) {
            const button = el('button', { class: 'action', 'data-action': 'replay', type: 'button' }, l.replayed_at ? 'replay again' : 'replay')
            button.addEventListener('click', async () => {
              const ok = await confirmAction('Send dead letter ' + l.dead_letter_id + ' back to ' + l.source.topic + ' (partition ' + l.source.partition + ', offset ' + l.source.offset + ')? Its role reads it again; if its cause is not fixed, it is dead-lettered again.', 'replay', '')
              if (ok) await runAction('/api/dead-letters/' + encodeURIComponent(l.dead_letter_id) + '/replay', {}, 'replay ' + l.dead_letter_id.slice(0, 8))
            })
            cell.append(button)
          }
          row.append(
            el('td', { class: 'mono' }, l.dead_lettered_at.replace('T', ' ').slice(0, 23)),
            el('td', {}, l.role),
            el('td', { class: 'mono' }, l.source.topic + '/' + l.source.partition + '@' + l.source.offset),
            el('td', { class: 'mono' }, l.key || ''),
            el('td', { class: 'reason' }, l.reason),
            el('td', { class: 'mono' }, l.replayed_at ? l.replayed_at.replace('T', ' ').slice(0, 19) : ''),
            cell,
          )
          return row
        }),
    )
    document.getElementById('dlq-count').textContent = letters.length + ' dead letter(s)'
    live(true, 'live: refreshed ' + new Date().toLocaleTimeString())
  } catch (error) {
    document.getElementById('dlq-count').textContent = 'could not load: ' + error.message
    live(false, 'retrying')
  }
  schedule(route, LIST_EVERY_MS)
}

// ---- the list

async function showList() {
  showView('list-view')
  const status = document.getElementById('status-filter').value
  try {
    const list = await getJson('/api/sagas' + (status ? '?status=' + encodeURIComponent(status) : ''))
    const body = document.getElementById('sagas')
    body.replaceChildren(
      ...list.sagas.map((s) => {
        const row = el('tr', { class: 'saga', 'data-order': s.order_id, 'data-status': s.status })
        row.append(
          el('td', { class: 'mono' }, s.started_at.replace('T', ' ').slice(0, 23)),
          el('td').appendChild(el('span', { class: 'status ' + s.status }, s.status)).parentNode,
          el('td', {}, s.step),
          el('td', {}, String(s.attempt)),
          el('td', { class: 'mono' }, s.order_id),
          el('td', { class: 'reason' }, s.reason || ''),
        )
        row.addEventListener('click', () => (location.hash = '#saga=' + s.order_id))
        return row
      }),
    )
    document.getElementById('list-count').textContent = list.sagas.length + ' of ' + list.matched + ' saga(s)'
    live(true, 'live: refreshed ' + new Date().toLocaleTimeString())
  } catch (error) {
    document.getElementById('list-count').textContent = 'could not load: ' + error.message
    live(false, 'retrying')
  }
  schedule(route, LIST_EVERY_MS)
}

// ---- one saga

function x(at, until, width) {
  return LEFT + (until > 0 ? (at / until) * (width - LEFT - RIGHT) : 0)
}

function seconds(ms) {
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s'
}

function colour(mark) {
  if (mark.kind === 'timer') return 'var(--timer)'
  if (mark.compensation) return 'var(--comp)'
  if (mark.failed || mark.type === 'order.cancelled') return 'var(--bad)'
  if (mark.kind === 'command') return 'var(--cmd)'
  return 'var(--ok)'
}

function drawLanes(svg, lanes) {
  const width = Math.max(900, svg.parentNode.clientWidth)
  const height = TOP + lanes.lanes.length * LANE_HEIGHT + 10
  svg.setAttribute('width', width)
  svg.setAttribute('height', height)
  svg.setAttribute('data-until', lanes.until)
  svg.replaceChildren()
  const y = (lane) => TOP + lanes.lanes.indexOf(lane) * LANE_HEIGHT + LANE_HEIGHT / 2

  // The time axis: about eight ticks, at round numbers of milliseconds.
  const step = [100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000].find((s) => lanes.until / s <= 8) || 600000
  for (let t = 0; t <= lanes.until; t += step) {
    const tx = x(t, lanes.until, width)
    svg.append(el('svg:line', { x1: tx, x2: tx, y1: TOP - 6, y2: height - 10, stroke: '#f1f5f9' }))
    svg.append(el('svg:text', { x: tx, y: TOP - 10, 'text-anchor': 'middle', class: 'axis' }, seconds(t)))
  }
  lanes.lanes.forEach((lane, i) => {
    const top = TOP + i * LANE_HEIGHT
    svg.append(el('svg:rect', { x: 0, y: top, width, height: LANE_HEIGHT, fill: i % 2 ? '#fcfcfd' : '#ffffff' }))
    svg.append(el('svg:line', { x1: LEFT, x2: width - RIGHT, y1: y(lane), y2: y(lane), stroke: '#e5e7eb' }))
    svg.append(el('svg:text', { x: 10, y: y(lane) + 4, class: 'lane-name', 'data-lane-name': lane }, lane))
  })

  for (const span of lanes.spans) {
    const x1 = x(span.from, lanes.until, width)
    const w = Math.max(2, x(span.to, lanes.until, width) - x1)
    const g = el('svg:g', { class: 'span', 'data-kind': span.kind, 'data-lane': span.lane, 'data-step': span.step, 'data-attempt': span.attempt, 'data-compensation': span.compensation, 'data-from': span.from, 'data-to': span.to })
    const label = (span.kind === 'wait' ? 'wait ' : span.compensation ? 'undo ' : '') + seconds(span.to - span.from) + (span.open ? ' …' : '')
    if (span.kind === 'wait') {
      g.append(el('svg:rect', { x: x1, y: y(span.lane) - 5, width: w, height: 10, fill: '#ede9fe', stroke: '#a78bfa', 'stroke-dasharray': '4 3' }))
      g.append(el('svg:text', { x: x1 + w / 2, y: y(span.lane) - 9, 'text-anchor': 'middle', fill: '#6d28d9' }, label))
    } else {
      g.append(el('svg:rect', { x: x1, y: y(span.lane) - 7, width: w, height: 14, rx: 3, fill: span.compensation ? '#fde68a' : '#dbeafe', stroke: span.compensation ? '#d97706' : '#93c5fd' }))
    }
    g.append(el('svg:title', {}, span.kind + ' ' + span.step + (span.attempt ? ' attempt ' + span.attempt : '') + ': ' + label))
    svg.append(g)
  }

  // Labels that would overprint each other step down a row; near the right edge they end at their mark.
  const taken = {}
  const labelAt = (lane, mx, text) => {
    const w = text.length * 6.2
    const anchor = mx + w / 2 > width - 4 ? 'end' : 'middle'
    const left = anchor === 'end' ? mx - w : mx - w / 2
    const rows = (taken[lane] = taken[lane] || [[], [], []])
    let row = rows.findIndex((r) => r.every(([a, b]) => left + w + 4 < a || b + 4 < left))
    if (row < 0) row = rows.reduce((best, r, i) => (r.length < rows[best].length ? i : best), 0)
    rows[row].push([left, left + w])
    return { row, anchor }
  }
  for (const mark of lanes.marks) {
    const mx = x(mark.at, lanes.until, width)
    const my = y(mark.lane)
    const g = el('svg:g', { class: 'mark', 'data-lane': mark.lane, 'data-kind': mark.kind, 'data-type': mark.type, 'data-step': mark.step, 'data-attempt': mark.attempt, 'data-compensation': mark.compensation, 'data-at': mark.at })
    const fill = colour(mark)
    if (mark.kind === 'command') g.append(el('svg:rect', { x: mx - 5, y: my - 5, width: 10, height: 10, fill }))
    else if (mark.kind === 'timer') g.append(el('svg:rect', { x: mx - 5, y: my - 5, width: 10, height: 10, fill, transform: 'rotate(45 ' + mx + ' ' + my + ')' }))
    else g.append(el('svg:circle', { cx: mx, cy: my, r: mark.kind === 'final' ? 7 : 5, fill }))
    const short = mark.kind === 'timer' ? (mark.type === 'saga.retry-due' ? 'retry' : 'timeout') : mark.type.replace(/^(inventory|payment|order)\./, '')
    const label = short + (mark.attempt && mark.kind !== 'notified' ? ' #' + mark.attempt : '')
    const { row, anchor } = labelAt(mark.lane, mx, label)
    g.append(el('svg:text', { x: mx, y: my + 19 + row * 12, 'text-anchor': anchor }, label))
    g.append(el('svg:title', {}, mark.type + (mark.attempt ? ' attempt ' + mark.attempt : '') + ' at +' + seconds(mark.at) + (mark.compensation ? ' (compensation)' : '')))
    svg.append(g)
  }
}

async function showSaga(id) {
  showView('saga-view')
  const head = document.getElementById('saga-head')
  try {
    const { report, lanes } = await getJson('/api/sagas/' + encodeURIComponent(id))
    const facts = el('div', { class: 'facts' })
    const fact = (k, v) => facts.append(el('span', { class: 'muted' }, k), v)
    fact('order', el('span', { class: 'mono' }, report.order_id))
    fact('saga', el('span', { class: 'mono' }, report.saga_id))
    fact('status', el('span', { class: 'status ' + report.status, id: 'saga-status' }, report.status))
    fact('step', el('span', {}, report.step + ', attempt ' + report.attempt))
    if (report.reason) fact('reason', el('span', {}, report.reason))
    fact('took', el('span', {}, seconds(lanes.until) + (report.outcome ? '' : ' so far')))
    head.replaceChildren(el('h2', {}, 'saga ' + report.order_id.slice(0, 8)), facts)
    drawLanes(document.getElementById('lanes'), lanes)
    drawSagaActions(report)
    if (report.outcome) {
      live(false, report.outcome)
      return
    }
    live(true, 'live')
  } catch (error) {
    // Just after an order is placed the orchestrator may not have written its saga yet.
    head.replaceChildren(el('p', { class: error.status === 404 ? 'muted' : 'error' }, error.status === 404 ? 'waiting for saga ' + id + ' to appear…' : 'could not load: ' + error.message))
    live(false, 'retrying')
  }
  schedule(route, SAGA_EVERY_MS)
}

function route() {
  const match = /^#saga=(.+)$/.exec(location.hash)
  if (match) showSaga(decodeURIComponent(match[1]))
  else if (location.hash === '#dead-letters') showDeadLetters()
  else showList()
}

document.getElementById('status-filter').addEventListener('change', () => {
  if (location.hash) location.hash = ''
  else route()
})
window.addEventListener('hashchange', () => {
  // An action's record belongs to the view it was taken in.
  document.getElementById('action-result').hidden = true
  lastActions = ''
  document.getElementById('saga-actions').replaceChildren()
  route()
})
loadAccess().then(route)
