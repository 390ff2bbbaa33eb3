#!/usr/bin/env bash
# outside.sh DIR LABEL: the five roles (dev, success rates 1) on the broker at 29092, then 300 at once
# (warm-up), 3,000 at 200/s, 6,000 at once from pace.py through kcat; stats from broker timestamps.
. /tmp/n26.sh
dir=$1; label=$2; prefix="out$RANDOM."; tmp=$(mktemp -d)
cd $dir
KAFKA_BROKERS=127.0.0.1:29092 SAGA_TOPIC_PREFIX=$prefix SAGA_DATA_DIR=$tmp INVENTORY_SUCCESS_RATE=1 PAYMENT_SUCCESS_RATE=1 LOG_LEVEL=warn node bin/run.js dev --orders 0 --port 0 > $tmp/dev.log 2>&1 &
dev=$!
sleep 20
B=/work/shared/bench
[ -d $B ] || B=/work/main/../shared/bench
now() { date +%s%3N; }
python3 $B/pace.py 300 0 | kcat -P -b 127.0.0.1:29092 -t ${prefix}order.events -K$'\t'
sleep 8
t1=$(now); python3 $B/pace.py 3000 200 | kcat -P -b 127.0.0.1:29092 -t ${prefix}order.events -K$'\t'; sleep 10
t2=$(now); python3 $B/pace.py 6000 0 | kcat -P -b 127.0.0.1:29092 -t ${prefix}order.events -K$'\t'; sleep 25
kcat -C -b 127.0.0.1:29092 -t ${prefix}order.events -o beginning -e -u -J -q > $tmp/events.json 2>/dev/null
echo "$label 200/s: $(python3 $B/sagastats.py --since $t1 --until $t2 < $tmp/events.json)"
echo "$label burst: $(python3 $B/sagastats.py --since $t2 < $tmp/events.json)"
kill -INT $dev; wait $dev 2>/dev/null
