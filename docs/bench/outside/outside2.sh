#!/usr/bin/env bash
# The same running roles, measured alternately from outside (pace.py + kcat) and by sagactl bench --attach, 200/s for 15 s each.
. /tmp/n26.sh
prefix="cmp$RANDOM."; tmp=$(mktemp -d); B=/work/shared/bench
cd /work/main
export KAFKA_BROKERS=127.0.0.1:29092 SAGA_TOPIC_PREFIX=$prefix SAGA_DATA_DIR=$tmp INVENTORY_SUCCESS_RATE=1 PAYMENT_SUCCESS_RATE=1 LOG_LEVEL=warn
node bin/run.js dev --orders 0 --port 0 > $tmp/dev.log 2>&1 &
dev=$!
sleep 20
now() { date +%s%3N; }
python3 $B/pace.py 300 0 | kcat -P -b 127.0.0.1:29092 -t ${prefix}order.events -K$'\t'; sleep 8
for round in 1 2; do
  t1=$(now); python3 $B/pace.py 3000 200 | kcat -P -b 127.0.0.1:29092 -t ${prefix}order.events -K$'\t'; sleep 8; t2=$(now)
  kcat -C -b 127.0.0.1:29092 -t ${prefix}order.events -o beginning -e -u -J -q > $tmp/events.json 2>/dev/null
  echo "round $round outside 200/s: $(python3 $B/sagastats.py --since $t1 --until $t2 < $tmp/events.json)"
  node bin/run.js bench --attach --duration 15s --rate 200 --json > $tmp/bench$round.json 2>$tmp/bench$round.err
  python3 -c "
import json;r=json.load(open('$tmp/bench$round.json'));s=r['sagas'];l=s['latency_ms'];print('round $round sagactl bench --attach 200/s:', s['finished'], 'p50', l['p50'], 'p90', l['p90'], 'p99', l['p99'], 'kept_up', (r.get('sustained') or {}).get('kept_up'))"
  sleep 5
done
kill -INT $dev; wait $dev 2>/dev/null
