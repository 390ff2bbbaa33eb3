#!/usr/bin/env bash
# Alternating runs on one machine, one session: Kafka Streams (commit 10 ms), sagactl main, sagactl 0.4 (2e82610).
set -u
KS=/work/shared/bench/kstreams-anchor/run.sh
for round in 1 2; do
  echo "== round $round $(date +%T)"
  echo "kstreams: $(COMMIT_INTERVAL_MS=10 bash $KS bench $((29390 + round * 10)) 2>/dev/null | tail -1)"
  bash "$(dirname "$0")/fresh.sh" /work/main "main($(git -C /work/main rev-parse --short HEAD))" $((29490 + round * 10))
  [ "$round" = 1 ] && bash "$(dirname "$0")/fresh.sh" /work/wt-base "0.4(2e82610)" $((29590 + round * 10))
done
echo "== end $(date +%T)"
