#!/bin/bash
# usage: bench-full.sh <dir> <outdir> [what...]
. /tmp/n26.sh
dir=$1; out=$2; shift 2
cd "$dir"
export KAFKA_BROKERS=127.0.0.1:29092
BP=$(pgrep -f kafka.Kafka | head -1)
for w in "$@"; do case $w in
  burst) node bin/run.js bench --orders 6000 --concurrency 256 --broker-pid $BP --json > "$out/burst.json" 2> "$out/burst.err";;
  r200) node bin/run.js bench --duration 60s --rate 200 --broker-pid $BP --json > "$out/rate200.json" 2> "$out/rate200.err";;
  r20) node bin/run.js bench --duration 30s --rate 20 --broker-pid $BP --floor-samples 100 --json > "$out/rate20.json" 2> "$out/rate20.err";;
  r1000) node bin/run.js bench --duration 60s --rate 1000 --broker-pid $BP --json > "$out/rate1000.json" 2> "$out/rate1000.err";;
  idle) BPID=$BP bash /work/main/docs/bench/outside/idle.sh "$dir" "$(basename $out)" > "$out/idle.txt" 2>&1;;
esac; done
echo done > "$out/DONE"
