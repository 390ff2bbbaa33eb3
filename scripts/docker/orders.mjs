// Places orders through the api's published ports until one completes; used by scripts/docker-test.sh.
//   node scripts/docker/orders.mjs <label> <port>[,<port>...] [batch size, 3 by default]
// The roles run with their default success rates (inventory 0.8, no retry; payment 0.7, retried), so
// an order may end cancelled: orders go in batches, one POST per port in turn and each read back on
// the next port (every api replica answers for every order). Every order must reach a final status
// (completed or cancelled) within ORDER_DEADLINE_MS; the run passes when one completed, and fails
// after 4 batches without one (below 1 in 10^8 at those rates) or on any order left pending.
// A batch of 16 puts an order, all but surely, on each of order.events' 8 partitions: on those a
// killed replica held, too.
const [label = 'orders', portList = '3000', batchSize = '3'] = process.argv.slice(2)
const ports = portList.split(',').map(Number)
const DEADLINE_MS = Number(process.env.ORDER_DEADLINE_MS || 120_000)
const BATCH = Number(batchSize)
const BATCHES = 4
const BODY = { user_id: 'docker-test', items: [{ sku: 'book', qty: 1 }], amount: 999 }
const started = Date.now()
const secs = (from) => ((Date.now() - from) / 1000).toFixed(1)

async function place(port) {
  const response = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BODY) })
  if (response.status !== 202) throw new Error(`POST /orders on port ${port} answered ${response.status}: ${await response.text()}`)
  return (await response.json()).order_id
}

async function finalStatus(id, port) {
  const deadline = Date.now() + DEADLINE_MS
  let last = 'no answer'
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/orders/${id}`)
      last = `${response.status} ${await response.text()}`
      if (response.status === 200) {
        const { status } = JSON.parse(last.slice(4))
        if (status !== 'pending') return status
      }
    } catch (error) {
      last = String(error)
    }
    if (Date.now() > deadline) throw new Error(`order ${id} did not reach a final status within ${DEADLINE_MS / 1000} s (GET on port ${port}: last answer ${last})`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

for (let batch = 1; batch <= BATCHES; batch++) {
  const from = Date.now()
  const orders = []
  for (let i = 0; i < BATCH; i++) {
    const n = (batch - 1) * BATCH + i
    const postPort = ports[n % ports.length]
    orders.push({ id: await place(postPort), postPort, readPort: ports[(n + 1) % ports.length] })
  }
  const statuses = await Promise.all(orders.map((o) => finalStatus(o.id, o.readPort)))
  orders.forEach((o, i) => console.log(`${label}: order ${o.id} placed on :${o.postPort}, read on :${o.readPort}: ${statuses[i]}`))
  if (statuses.includes('completed')) {
    console.log(`${label}: ${statuses.filter((s) => s === 'completed').length} of ${BATCH} completed, all final, in ${secs(from)} s (${secs(started)} s in all)`)
    process.exit(0)
  }
  console.log(`${label}: batch ${batch}: none completed (the default success rates); placing ${BATCH} more`)
}
console.error(`${label}: FAILED: no order completed in ${BATCHES} batches of ${BATCH}`)
process.exit(1)
