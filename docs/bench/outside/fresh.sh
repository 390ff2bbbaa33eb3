#!/usr/bin/env bash
# fresh.sh DIR LABEL PORT: a fresh broker on PORT, the five roles of DIR (dev, success rates 1),
# then the outside shapes (pace.py | kcat): 300 at once (warm-up), 3,000 at 200/s, 6,000 at once.
# Latency and throughput off broker timestamps (sagastats.py); CPU of broker + roles from /proc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$1; label=$2; port=$3
export PATH=/work/main/.sagactl/node/26.12.1/bin:$PATH
B=/work/shared/bench; K=127.0.0.1:$port
tmp=$(mktemp -d /tmp/sagactl-bench.XXXXXX)
$B/kafka/broker.sh up $port $tmp/broker > $tmp/broker.out 2>&1
bpid=$(cat $tmp/broker/broker.pid)
prefix="out$RANDOM."
cd $dir
KAFKA_BROKERS=$K SAGA_TOPIC_PREFIX=$prefix SAGA_DATA_DIR=$tmp/data INVENTORY_SUCCESS_RATE=1 PAYMENT_SUCCESS_RATE=1 LOG_LEVEL=warn node bin/run.js dev --orders 0 --port 0 > $tmp/dev.log 2>&1 &
dev=$!
sleep 25
now() { date +%s%3N; }
python3 $B/pace.py 300 0 | kcat -P -b $K -t ${prefix}order.events -K$'\t'
sleep 8
c0=$($here/cpu.sh $bpid $dev)
t1=$(now); python3 $B/pace.py 3000 200 | kcat -P -b $K -t ${prefix}order.events -K$'\t'; sleep 10
c1=$($here/cpu.sh $bpid $dev)
t2=$(now); python3 $B/pace.py 6000 0 | kcat -P -b $K -t ${prefix}order.events -K$'\t'; sleep 25
c2=$($here/cpu.sh $bpid $dev)
kcat -C -b $K -t ${prefix}order.events -o beginning -e -u -J -q > $tmp/events.json 2>/dev/null
echo "$label 200/s: $(python3 $B/sagastats.py --since $t1 --until $t2 < $tmp/events.json) cpu_ms_per_saga=$(python3 -c "print(round(($c1-$c0)/3000,2))")"
echo "$label burst: $(python3 $B/sagastats.py --since $t2 < $tmp/events.json) cpu_ms_per_saga=$(python3 -c "print(round(($c2-$c1)/6000,2))")"
kill -INT $dev; wait $dev 2>/dev/null
$B/kafka/broker.sh down $tmp/broker > /dev/null 2>&1
echo "logs: $tmp (broker pid $bpid)"
