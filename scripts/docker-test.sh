#!/usr/bin/env bash
# The Docker route, tested: the project's Dockerfile and docker-compose.yml, used as they are.
#   bash scripts/docker-test.sh        (as root; a Node.js >= 22 with npm first on PATH)
# 1. installs what is missing: Debian's docker.io, docker-compose (unless `docker compose` works)
#    and debootstrap; starts dockerd (--bridge=none --iptables=false) if none answers, and stops
#    that one, by its PID, at the end;
# 2. builds stand-ins for node:22-bookworm-slim and apache/kafka:4.1.1 when those names are absent
#    (scripts/docker/standins.sh: Docker Hub may be out of reach);
# 3. builds the Dockerfile (`docker build --network host`: the build reaches the npm registry) and
#    tags the image under the names Compose gives the file's `build: .` services, so that
#    `up --no-build` runs it: Compose's own build cannot be given the host's network;
# 4. `up` with the file's replicas, checks each service's replica count, waits for the api
#    replicas' /healthz on their published ports, and sees an order complete through them;
# 5. `docker kill`s one orchestrator replica and sees orders complete again without it;
# 6. `down`, then checks that no container and no network of the project is left.
# Containers talk only among themselves, on the two networks the Compose file declares (the roles'
# one is `internal`); the host reaches the api through its published ports. Each step prints its
# time; any failure exits non-zero, after printing the containers' last log lines.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PROJECT="${DOCKER_TEST_PROJECT:-sagactldockertest}"
IMAGE="sagactl-dockertest:latest"
HEALTH_DEADLINE_S="${DOCKER_TEST_HEALTH_DEADLINE_S:-180}"
t0=$SECONDS
say() { echo "docker-test: $*"; }
timed() { local what="$1" s=$SECONDS; shift; "$@"; say "$what took $((SECONDS - s)) s"; }
fail() { echo "docker-test: FAILED: $*" >&2; exit 1; }
# Runs "$@" with its output in a file, shown (the last 40 lines) only when it fails.
quiet() {
  local out rc=0; out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  [ $rc -eq 0 ] || { tail -40 "$out" >&2; rm -f "$out"; echo "docker-test: '$*' exited $rc" >&2; return $rc; }
  rm -f "$out"
}
# Runs "$@" until it succeeds, every 0.5 s, for at most $1 seconds.
poll() {
  local limit="$1" what="$2" until=$((SECONDS + $1)); shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || fail "$what: not within $limit s"
    sleep 0.5
  done
}

[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and may start dockerd)"
command -v node >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' \
  || fail "needs Node.js >= 22 first on PATH (e.g. scripts/with-node.sh 26 bash scripts/docker-test.sh)"

# 1. the engine, Compose, debootstrap
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then missing+=(docker-compose); fi
if [ ${#missing[@]} -gt 0 ]; then
  timed "apt-get install ${missing[*]}" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null' _ "${missing[@]}"
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
compose+=(-p "$PROJECT" -f "$root/docker-compose.yml")

dockerd_pid=""
dockerd_log=""
stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  kill "$dockerd_pid" 2>/dev/null || true
  local until=$((SECONDS + 30))
  while kill -0 "$dockerd_pid" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.2; done
  if kill -0 "$dockerd_pid" 2>/dev/null; then say "dockerd $dockerd_pid still up after 30 s; SIGKILL"; kill -9 "$dockerd_pid" 2>/dev/null || true; fi
  say "stopped the dockerd it started ($dockerd_pid)"
}
if ! docker info >/dev/null 2>&1; then
  dockerd_log="$(mktemp /tmp/sagactl-dockerd.XXXXXX.log)"
  dockerd --bridge=none --iptables=false >"$dockerd_log" 2>&1 &
  dockerd_pid=$!
  say "started dockerd $dockerd_pid (--bridge=none --iptables=false; log $dockerd_log)"
  s=$SECONDS
  poll 60 "dockerd answering" docker info || { tail -20 "$dockerd_log" >&2; exit 1; }
  say "dockerd answered after $((SECONDS - s)) s"
fi

up=0
cleanup() {
  local rc=$?
  if [ "$up" = 1 ]; then
    if [ $rc -ne 0 ]; then
      "${compose[@]}" ps -a >&2 || true
      "${compose[@]}" logs --no-color --tail 30 >&2 || true
    fi
    "${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true
  fi
  stop_dockerd
  if [ $rc -eq 0 ]; then [ -z "$dockerd_log" ] || rm -f "$dockerd_log"; say "passed in $((SECONDS - t0)) s"; else echo "docker-test: FAILED after $((SECONDS - t0)) s" >&2; fi
  exit $rc
}
trap cleanup EXIT

# 2. the base images the project's files name
timed "stand-in base images" bash "$root/scripts/docker/standins.sh"

# 3. the project's Dockerfile, unchanged
[ -f "$root/node_modules/yaml/package.json" ] || timed "npm ci (to read the Compose file)" npm ci --no-audit --no-fund
build=(docker build --network host -t "$IMAGE")
[ -z "${DOCKER_TEST_NO_CACHE:-}" ] || build+=(--no-cache)
timed "docker build of the Dockerfile" quiet "${build[@]}" "$root"
# The Compose file's services: "name replicas built" per line (built: it has `build:`, no `image:`).
services="$(cd "$root" && node --input-type=module -e '
  import fs from "node:fs"; import { parse } from "yaml"
  const file = parse(fs.readFileSync("docker-compose.yml", "utf8"), { merge: true })
  for (const [name, s] of Object.entries(file.services)) console.log(name, s.deploy?.replicas ?? 1, s.build !== undefined && !s.image ? 1 : 0)')"
while read -r name _ built; do
  # Compose v1 names a built service's image <project>_<service>, Compose v2 <project>-<service>.
  if [ "$built" = 1 ]; then docker tag "$IMAGE" "${PROJECT}_$name"; docker tag "$IMAGE" "${PROJECT}-$name"; fi
done <<<"$services"

# 4. up, with the file's replicas; one order completes through the published ports
"${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true  # a previous run's leftovers
up=1
timed "${compose[*]} up -d --no-build (kafka healthy, roles started)" quiet "${compose[@]}" up -d --no-build
containers() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" "${@:2}"; }
while read -r name replicas _; do
  n="$(containers "$name" | wc -l)"
  [ "$n" = "$replicas" ] || fail "service $name runs $n containers, the Compose file asks for $replicas"
done <<<"$services"
say "replicas as the file asks: $(while read -r name replicas _; do printf '%s %s, ' "$name" "$replicas"; done <<<"$services" | sed 's/, $//')"
ports=()
for c in $(containers api); do
  ports+=("$(docker port "$c" 3000/tcp | sed -n 's/^0\.0\.0\.0:\([0-9]*\)$/\1/p' | head -1)")
done
[ ${#ports[@]} -ge 1 ] && [ -n "${ports[0]}" ] || fail "no published port for the api's 3000"
healthy() { node -e 'fetch(`http://127.0.0.1:${process.argv[1]}/healthz`).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$1"; }
s=$SECONDS
for p in "${ports[@]}"; do poll "$HEALTH_DEADLINE_S" "GET /healthz on the api's published port $p answering 200" healthy "$p"; done
say "api replicas healthy on published ports ${ports[*]} after $((SECONDS - s)) s"
portlist="$(IFS=,; echo "${ports[*]}")"
# Only the api may be on a network with a way out; every network is the project's own.
for c in $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
  svc="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$c")"
  for net in $(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$c"); do
    [ "$(docker network inspect -f '{{index .Labels "com.docker.compose.project"}}' "$net")" = "$PROJECT" ] || fail "$svc is on $net, not a network of the project"
    if [ "$(docker network inspect -f '{{.Internal}}' "$net")" != true ] && [ "$svc" != api ]; then fail "$svc is on $net, which is not internal"; fi
  done
done
say "networks: every container on the project's own; all but the api only on internal ones"
timed "an order completed through the published ports" node "$root/scripts/docker/orders.mjs" "before the kill" "$portlist"

# 5. a replica killed changes nothing
victim="$(containers orchestrator | head -1)"
victim_name="$(docker inspect -f '{{.Name}}' "$victim" | tr -d /)"
docker kill "$victim" >/dev/null
poll 30 "$victim_name exited after docker kill" bash -c '[ "$(docker inspect -f "{{.State.Running}}" "$1")" = false ]' _ "$victim"
say "killed $victim_name; $(containers orchestrator | wc -l) orchestrator replicas left running"
timed "orders final, one completed, with one orchestrator killed" node "$root/scripts/docker/orders.mjs" "after the kill" "$portlist" 16
[ "$(docker inspect -f '{{.State.Running}}' "$victim")" = false ] || fail "$victim_name ran again: the orders above may not have run without it"
[ "$(containers api | wc -l)" = "${#ports[@]}" ] || fail "an api replica stopped"

# 6. down leaves nothing
timed "${compose[*]} down" quiet "${compose[@]}" down --volumes --remove-orphans
up=0
left_c="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
left_n="$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"; docker network ls -q --filter "name=${PROJECT}_")"
[ -z "$left_c" ] || fail "containers left after down: $left_c"
[ -z "$left_n" ] || fail "networks left after down: $left_n"
say "down left no container and no network of project $PROJECT"
while read -r name _ built; do
  if [ "$built" = 1 ]; then docker rmi "${PROJECT}_$name" "${PROJECT}-$name" >/dev/null; fi
done <<<"$services"
