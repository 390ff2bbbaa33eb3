// Corrects how @platformatic/kafka 1.35 drops aborted transactions when it reads with
// isolation.level=read_committed. Run at install; idempotent. The 1.x line has no release with a fix.
// - platformatic/kafka#391 (fixed upstream by #393): an abort marker whose transaction is not in the
//   fetch response's abortedTransactions (its data lies before the fetch offset) threw a TypeError
//   from a fetch callback, which killed the process.
// - It kept one aborted range per producer, so of several aborted transactions of one producer in
//   one response (a transactional id retried: same producer id, new epoch) only the last was
//   dropped; and it kept a transaction whose abort marker fell outside the response. Both let
//   aborted records through as if committed. The replacement drops, per producer, every batch from
//   the first offset of an aborted transaction up to that producer's next control batch, as the
//   Java client does.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const MARK = '/* sagactl: read_committed filter */'
const START = '    #filterUncommittedMessages(response) {'
const END = '    #getRejoinError(error) {'
const REPLACEMENT = `    #filterUncommittedMessages(response) { ${MARK}
        for (const topic of response.responses) {
            for (const partition of topic.partitions) {
                if (!partition.records || !partition.abortedTransactions.length) {
                    continue;
                }
                const starts = new Map();
                for (const aborted of partition.abortedTransactions) {
                    const list = starts.get(aborted.producerId) ?? [];
                    list.push(aborted.firstOffset);
                    starts.set(aborted.producerId, list);
                }
                for (const list of starts.values()) {
                    list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
                }
                const open = new Set();
                // Control batches stay: the stream tracks its position by them.
                partition.records = partition.records.filter(batch => {
                    const list = starts.get(batch.producerId);
                    if (!list) {
                        return true;
                    }
                    if (batch.attributes & IS_CONTROL) {
                        open.delete(batch.producerId);
                        return true;
                    }
                    while (list.length && list[0] <= batch.firstOffset) {
                        list.shift();
                        open.add(batch.producerId);
                    }
                    return !open.has(batch.producerId);
                });
            }
        }
    }
`

let file
try {
  const entry = createRequire(path.join(process.cwd(), 'package.json')).resolve('@platformatic/kafka')
  file = path.join(path.dirname(entry), 'clients', 'consumer', 'consumer.js')
} catch {
  process.exit(0)
}
const source = fs.readFileSync(file, 'utf8')
if (source.includes(MARK)) process.exit(0)
const start = source.indexOf(START)
const end = source.indexOf(END)
if (start < 0 || end < start) {
  console.warn(`sagactl: ${file} has no read_committed filter where 1.35 has it; left as it is`)
  process.exit(0)
}
fs.writeFileSync(file, source.slice(0, start) + REPLACEMENT + source.slice(end))
console.log('sagactl: replaced the read_committed filter of @platformatic/kafka (see scripts/patch-platformatic-kafka.mjs)')
