// Corrects how @platformatic/kafka drops aborted transactions when it reads with
// isolation.level=read_committed. Run at install; idempotent. The package is pinned to one exact
// version (package.json) and this step fails the install on any other, because the replacement is
// written against that version's consumer.
// - platformatic/kafka#391 (guarded upstream by #393): an abort marker whose transaction is not in
//   the fetch response's abortedTransactions threw a TypeError from a fetch callback, which killed
//   the process. 2.x no longer throws, but still lets aborted records through:
// - It keeps one aborted range per producer, so of several aborted transactions of one producer in
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
                if (!partition.records || !partition.abortedTransactions?.length) {
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

// The versions whose consumer this replacement was checked against, line by line.
const KNOWN = ['2.12.1']

let file
let version
try {
  const require = createRequire(path.join(process.cwd(), 'package.json'))
  const entry = require.resolve('@platformatic/kafka')
  let dir = path.dirname(entry)
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
  version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
  file = path.join(path.dirname(entry), 'clients', 'consumer', 'consumer.js')
} catch {
  // Installed without the client (a partial install of the published files): nothing to patch.
  process.exit(0)
}
const fail = (why) => {
  console.error(`sagactl: cannot patch @platformatic/kafka ${version} at ${file}: ${why}. ` +
    `The read_committed filter is only known to be right after this patch on ${KNOWN.join(', ')}; ` +
    'pin one of those in package.json, or check the new version\'s #filterUncommittedMessages and add it to KNOWN in scripts/patch-platformatic-kafka.mjs.')
  process.exit(1)
}
if (!KNOWN.includes(version)) fail('this version is not one the patch knows')
const source = fs.readFileSync(file, 'utf8')
if (source.includes(MARK)) process.exit(0)
const start = source.indexOf(START)
const end = source.indexOf(END)
if (start < 0 || end < start) fail('its consumer has no read_committed filter where the patch expects one')
fs.writeFileSync(file, source.slice(0, start) + REPLACEMENT + source.slice(end))
console.log(`sagactl: replaced the read_committed filter of @platformatic/kafka ${version} (see scripts/patch-platformatic-kafka.mjs)`)
