// A throwaway OTLP/HTTP trace sink for measuring tracing's cost: accepts POST /v1/traces (JSON or
// protobuf), counts requests and bytes, and prints the counts on SIGINT/SIGTERM. Spans are not kept.
import http from 'node:http'

const port = Number(process.argv[2] ?? 4318)
let requests = 0
let bytes = 0
const server = http.createServer((request, response) => {
  request.on('data', (chunk) => (bytes += chunk.length))
  request.on('end', () => {
    requests++
    response.writeHead(200, { 'content-type': request.headers['content-type'] ?? 'application/json' }).end(request.headers['content-type']?.includes('json') ? '{}' : '')
  })
})
server.listen(port, '127.0.0.1', () => console.log(`otlp sink on http://127.0.0.1:${port}`))
const done = () => {
  console.log(JSON.stringify({ requests, bytes }))
  process.exit(0)
}
process.on('SIGINT', done)
process.on('SIGTERM', done)
