#!/usr/bin/env bash
# Alternates the variants, round after round, under nice -n 5. Needs a broker from `node broker.mjs start`.
# Usage: [ROUND_START=n] ./run-all.sh [rounds] [variants...]   e.g. ./run-all.sh 3   or   ./run-all.sh 1 0 a100 b10
set -u
cd "$(dirname "$0")"
rounds=${1:-3}; shift || true
variants=("$@"); [ ${#variants[@]} -eq 0 ] && variants=(0 a100 b10 b100 0w)
mkdir -p out
first=${ROUND_START:-1}
for r in $(seq "$first" $((first + rounds - 1))); do
  for v in "${variants[@]}"; do
    case $v in
      0)     opts=(--variant 0) ;;
      0w)    opts=(--variant 0 --relay-wait 500 --relay-min-bytes 1 --reader-wait 500 --reader-min-bytes 1) ;;
      a100)  opts=(--variant a --commit-ms 100) ;;
      a1000) opts=(--variant a --commit-ms 1000) ;;
      b10)   opts=(--variant b --commit-ms 10) ;;
      b100)  opts=(--variant b --commit-ms 100) ;;
      *) echo "unknown variant $v"; exit 2 ;;
    esac
    echo "== round $r variant $v  $(date +%T)  $(uptime | sed 's/.*load/load/')"
    timeout 150 nice -n 5 node hop.mjs "${opts[@]}" --json "out/r$r-$v.json" > "out/r$r-$v.out" 2> "out/r$r-$v.err"
    echo "rc=$? $(cat out/r$r-$v.out)"
    grep -v '^\s' "out/r$r-$v.err" | head -5
  done
done
