#!/usr/bin/env bash
set -u
dir=$1; label=$2; tmp=$(mktemp -d)
cd "$dir"
KAFKA_BROKERS=127.0.0.1:29092 SAGA_TOPIC_PREFIX=idle$RANDOM SAGA_DATA_DIR=$tmp node bin/run.js dev --orders 0 --port 0 > $tmp/dev.log 2>&1 &
dev=$!
sleep 25
pids="$(pgrep -P $dev | tr '\n' ' ') $BPID"
declare -A A
for p in $pids; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); A[$p]=$(( $1 + $2 )); done
sleep 30
tot=0
for p in $pids; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); d=$(( $1 + $2 - ${A[$p]} )); tot=$((tot+d)); echo "$p $(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-60) $(awk -v d=$d 'BEGIN{printf "%.1f%%", d/30}')"; done
awk -v d=$tot -v l="$label" 'BEGIN{printf "%s idle total: %.1f %% of one core\n", l, d/30}'
kill -INT $dev; wait $dev 2>/dev/null
