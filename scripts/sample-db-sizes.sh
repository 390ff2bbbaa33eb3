#!/bin/bash
# Samples each role's SQLite file (.db + -wal) of the bench data directory that appears after this
# starts, every 5 s, as "<unix time> api=<bytes> orchestrator=<bytes> …" lines appended to $1 (docs/storage.md).
out=$1
before=$(ls -d /tmp/sagactl-bench-?????? 2>/dev/null)
d=""
while sleep 5; do
  if [ -z "$d" ]; then
    d=$(comm -13 <(echo "$before" | sort) <(ls -d /tmp/sagactl-bench-?????? 2>/dev/null | sort) | head -1)
    [ -z "$d" ] && continue
  fi
  [ -d "$d" ] || exit 0
  line="$(date +%s)"
  for r in api orchestrator inventory payment notifier; do
    s=$(( $(stat -c%s $d/$r.db 2>/dev/null || echo 0) + $(stat -c%s $d/$r.db-wal 2>/dev/null || echo 0) ))
    line="$line $r=$s"
  done
  echo "$line" >> $out
done
