// Carries the upstream fix for platformatic/kafka#391 (merged as #393 on the 2.x line; no 1.x
// release has it): a read_committed fetch may return an abort marker whose transaction is not in
// the response's abortedTransactions (its data lies before the fetch offset), and 1.35 then throws
// a TypeError from a fetch callback, which kills the process. Run at install; idempotent.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const BROKEN = 'abortedRanges.get(batch.producerId)[1] = batch.firstOffset;'
const FIXED = '{ const range = abortedRanges.get(batch.producerId); if (range) range[1] = batch.firstOffset; } /* sagactl: platformatic/kafka#393 */'

let file
try {
  const entry = createRequire(path.join(process.cwd(), 'package.json')).resolve('@platformatic/kafka')
  file = path.join(path.dirname(entry), 'clients', 'consumer', 'consumer.js')
} catch {
  process.exit(0)
}
const source = fs.readFileSync(file, 'utf8')
if (source.includes(FIXED)) process.exit(0)
if (!source.includes(BROKEN)) {
  console.warn(`sagactl: ${file} does not have the line platformatic/kafka#393 fixes; left as it is`)
  process.exit(0)
}
fs.writeFileSync(file, source.replace(BROKEN, FIXED))
console.log('sagactl: applied the fix of platformatic/kafka#393 to @platformatic/kafka')
