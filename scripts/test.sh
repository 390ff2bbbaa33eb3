#!/usr/bin/env bash
# Every test: type-check, build the binary the end-to-end tests run, then unit and end-to-end
# suites. The end-to-end setup starts a real Kafka broker (Java 17 + Maven) unless
# SAGA_TEST_BROKERS names one that answers.
set -euo pipefail
cd "$(dirname "$0")/.."
# On a Node.js older than sagactl's floor, a current one from the npm registry runs everything.
bin="$(node bin/current-node.js --bin)"
if [ -n "$bin" ]; then export PATH="$bin:$PATH" npm_config_nodedir="$(dirname "$bin")"; fi
start=$(date +%s)
npx tsc -p tsconfig.test.json
npm run build --silent
npx vitest run "$@"
echo "all tests passed in $(( $(date +%s) - start )) s"
