#!/usr/bin/env bash
# Runs a command with a Node.js of the given major first on PATH (scripts/node.sh installs it when
# the machine has another), and npm_config_nodedir pointing at its headers, so that native modules
# (better-sqlite3) build against that Node and not the system's /usr/include/node.
#   scripts/with-node.sh 26 bash -c 'npm ci && npm test'
set -euo pipefail
major="${1:?usage: scripts/with-node.sh <major> <command...>}"; shift
bin="$("$(dirname "$0")/node.sh" "$major")"
export PATH="$bin:$PATH"
export npm_config_nodedir="$(dirname "$bin")"
exec "$@"
