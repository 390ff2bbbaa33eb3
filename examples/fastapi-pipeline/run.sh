#!/usr/bin/env bash
# The seed's pipeline under sagactl, in one command: the two FastAPI services, and sagactl's roles
# with inventory and payment bridged to them. Ctrl-C, or SIGINT/SIGTERM to this script's PID,
# stops everything.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$here/setup.sh"
INVENTORY_PORT="${INVENTORY_PORT:-8101}"
PAYMENT_PORT="${PAYMENT_PORT:-8102}"
data="${SAGA_DATA_DIR:-$here/.data}"
mkdir -p "$data"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
(cd "$here" && DB="$data/inventory-service.db" exec .venv/bin/python -m uvicorn inventory:app --port "$INVENTORY_PORT" --log-level warning) & pids+=($!)
(cd "$here" && DB="$data/payment-service.db" exec .venv/bin/python -m uvicorn payment:app --port "$PAYMENT_PORT" --log-level warning) & pids+=($!)
cd "$root"
SAGA_HTTP_URL_INVENTORY="http://127.0.0.1:$INVENTORY_PORT" \
SAGA_HTTP_URL_PAYMENT="http://127.0.0.1:$PAYMENT_PORT" \
SAGA_DATA_DIR="$data" \
  node "$root/bin/run.js" dev "$@" &
# dev runs in the background so that this script can pass a signal sent to its PID alone on (bash
# holds a trapped signal until a foreground child exits), and without npx, whose `sh -c` does not
# pass one on. A signal to the whole group reaches dev twice; it takes the second as the first.
dev=$!
trap 'kill -INT "$dev" 2>/dev/null || true' INT TERM
status=0
wait "$dev" || status=$?
# A trapped signal ends the first wait early (status over 128); the second gives dev's own.
if [ "$status" -gt 128 ]; then status=0; wait "$dev" || status=$?; fi
exit "$status"
