#!/usr/bin/env bash
# cpu.sh PID...: CPU ms (user+system) of these processes and all their descendants, now.
tree() { local p=$1; echo $p; for c in $(pgrep -P $p); do tree $c; done; }
total=0
for root in "$@"; do
  for p in $(tree $root); do
    [ -r /proc/$p/stat ] || continue
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/$p/stat)
    total=$((total + t))
  done
done
echo $((total * 1000 / $(getconf CLK_TCK)))
