#!/usr/bin/env bash
# The short check run on the supported Node majors other than CI's main one: type-check, build,
# every unit test, and a few end-to-end files on the real broker (five roles, the Kafka adapter and
# its read_committed patch, the local broker launcher, the Chromium page). Run it with the Node to
# check first on PATH:
#   scripts/with-node.sh 22 bash -c 'npm ci && bash scripts/smoke.sh'
set -euo pipefail
cd "$(dirname "$0")/.."
# On a Node.js older than sagactl's floor, a current one from the npm registry runs everything.
bin="$(node bin/current-node.js --bin)"
if [ -n "$bin" ]; then export PATH="$bin:$PATH" npm_config_nodedir="$(dirname "$bin")"; fi
start=$(date +%s)
npx tsc -p tsconfig.test.json
npm run build --silent
npx vitest run --project unit
npx vitest run --project e2e test/e2e/happy-path.test.ts test/e2e/failures.test.ts test/e2e/kafka-adapter.test.ts \
  test/e2e/read-committed.test.ts test/e2e/ui.test.ts test/broker/local-kafka.test.ts
echo "smoke passed on Node $(node --version) in $(( $(date +%s) - start )) s"
