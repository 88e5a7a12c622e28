#!/usr/bin/env bash
# A local Hoist cluster on this machine: 3 controllers and 2 agent hosts, each host a network
# namespace on a private bridge (10.79.0.0/24, never routed to the uplink, no NAT), then a sample
# service with one replica on each agent host.
#
#   deploy/local-cluster.sh up       # start it (idempotent: a running cluster is left as it is)
#   deploy/local-cluster.sh status   # members, nodes and the sample service's replicas
#   deploy/local-cluster.sh down     # stop everything and remove namespaces, data and cgroups
#
# Needs root and hoist, hoist-agent, hoist-controller on PATH (deploy/quickstart.sh installs them).
# Afterwards: export HOIST_CONTROLLER=10.79.0.11:7000,10.79.0.12:7000,10.79.0.13:7000
#             export HOIST_TOKEN=$(cat /var/lib/hoist-local-cluster/c1/admin.token)
set -euo pipefail
cd "$(dirname "$0")/.."

BR=hoist-qs
NET=10.79.0
STATE=/var/lib/hoist-local-cluster
RUN=/run/hoist-local-cluster
CONTROLLERS=(c1 c2 c3)
AGENTS=(a1 a2)
export HOIST_CONTROLLER=$NET.11:7000,$NET.12:7000,$NET.13:7000

# The first admin token: the first controller writes it when the cluster starts; every hoist
# command below (and the other controllers' --join) sends it.
use_admin_token() {
  [ -s "$STATE/c1/admin.token" ] && HOIST_TOKEN=$(cat "$STATE/c1/admin.token") && export HOIST_TOKEN
}
use_admin_token || true

ctl_ip() { echo "$NET.1$1"; }   # c1 → .11
agent_ip() { echo "$NET.2$1"; } # a1 → .21
say() { echo "== $*"; }

# Adds network namespace hoist-qs-NAME with address IP on the bridge.
add_host() {
  local name=$1 ip=$2 ns=hoist-qs-$1
  ip netns list | grep -qw "$ns" && return 0
  ip netns add "$ns"
  ip link add "qs-$name" type veth peer name eth0 netns "$ns"
  ip link set "qs-$name" master "$BR" up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

# Starts CMD... in namespace NS in the background, logging to $RUN/NAME.log, pid in $RUN/NAME.pid.
start_in() {
  local name=$1 ns=$2; shift 2
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then return 0; fi
  ip netns exec "$ns" setsid "$@" >>"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # DESCRIPTION SECONDS COMMAND...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "local-cluster: timed out waiting for $what (logs in $RUN/)" >&2
  return 1
}

up() {
  for b in hoist hoist-agent hoist-controller; do
    command -v "$b" >/dev/null || { echo "local-cluster: $b not on PATH (run deploy/quickstart.sh)" >&2; exit 1; }
  done
  mkdir -p "$STATE" "$RUN"
  if ! ip link show "$BR" >/dev/null 2>&1; then
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
  fi

  say "starting 3 controllers"
  for i in 1 2 3; do
    add_host "c$i" "$(ctl_ip "$i")"
    local join=(--bootstrap)
    [ "$i" = 1 ] || join=(--join "$(ctl_ip 1):7000")
    # A restarted member needs only its data dir and address.
    [ -e "$STATE/c$i/raft" ] && join=()
    start_in "c$i" "hoist-qs-c$i" hoist-controller --data-dir "$STATE/c$i" \
      --listen "$(ctl_ip "$i"):7000" "${join[@]}"
    if [ "$i" = 1 ]; then
      wait_for "the first admin token" 30 test -s "$STATE/c1/admin.token"
      use_admin_token
    fi
    wait_for "controller c$i" 30 hoist cluster status
  done
  wait_for "3 voting members" 30 sh -c 'hoist cluster members -o json | grep -o "\"voter\": *true" | wc -l | grep -qx 3'
  hoist cluster members

  say "starting 2 agents"
  local token
  token=$(hoist cluster token)
  local image_tar="$STATE/busybox.tar"
  [ -f "$image_tar" ] || deploy/busybox-image.sh "$image_tar"
  for i in 1 2; do
    add_host "a$i" "$(agent_ip "$i")"
    start_in "a$i" "hoist-qs-a$i" hoist-agent --data-dir "$STATE/a$i" --socket "$RUN/a$i.sock" \
      --wg-interface "hqs-wg$i" --cgroup-parent "hoist/qs-a$i" \
      --join "$token" --controller "$HOIST_CONTROLLER" --advertise-addr "$(agent_ip "$i")" \
      --label "zone=z$i"
    wait_for "agent a$i" 30 env HOIST_AGENT="$RUN/a$i.sock" hoist info
    HOIST_AGENT="$RUN/a$i.sock" hoist image import "$image_tar" busybox >/dev/null
  done
  wait_for "2 ready nodes" 30 sh -c 'hoist node ls -o json | grep -o "\"ready\"" | wc -l | grep -qx 2'
  hoist node ls   # each node's SUBNET comes from the cluster CIDR; the hosts are linked by WireGuard

  say "applying the sample service (deploy/examples/hello.toml)"
  hoist service apply --no-resolve-image -f deploy/examples/hello.toml   # a local image: no registry digest to pin
  wait_for "2 replicas running" 60 sh -c 'hoist service ps hello -o json | grep -o "\"state\": *\"running\"" | wc -l | grep -qx 2'
  hoist service ps hello
  hoist service ls   # VIP: the service's stable virtual IP
  say "the service answers on every agent host (the routing mesh; each replica sees the caller's address)"
  for i in 1 2; do
    curl -sS --max-time 2 "http://$(agent_ip "$i"):8080/" || true
  done
  say "a container on a2 reaches every replica across the WireGuard overlay"
  local ip
  for ip in $(hoist service ps hello -o json | grep -o '"address": *"10\.200\.[0-9.]*"' | grep -o '10\.[0-9.]*'); do
    printf '%s: ' "$ip"
    HOIST_AGENT="$RUN/a2.sock" hoist run --rm busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $ip 8080 | tail -n 1" || true
  done
  say "and by name, through the cluster DNS (tasks.hello: every replica; hello: its virtual IP)"
  HOIST_AGENT="$RUN/a2.sock" hoist run --rm --network cluster busybox sh -c \
    "nslookup tasks.hello | grep -A1 Name; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 hello 8080 | tail -n 1" || true
  say "deploying a Compose stack as one release (deploy/examples/shop.yaml): web -> api -> db, by their short names"
  hoist stack deploy -c deploy/examples/shop.yaml --no-resolve-image shop
  hoist stack services shop
  for i in 1 2; do
    curl -sS --max-time 5 "http://$(agent_ip "$i"):8081/cgi-bin/index" || true
  done
  say "monitoring: /metrics on every member and agent, events, a scaling hook, the dashboard at http://$(ctl_ip 1):7000/ui"
  curl -sS --max-time 2 -H "Authorization: Bearer $HOIST_TOKEN" "http://$(ctl_ip 1):7000/metrics" | grep '^hoist_service_replicas_running' || true
  local hook
  hook=$(hoist hook token create --service hello 2>/dev/null)
  curl -sS --max-time 5 -H "Authorization: Bearer $hook" -H 'content-type: application/json' \
    -d '{"direction": "up", "reason": "local-cluster demo"}' "http://$(ctl_ip 2):7000/v1/services/hello/scale-hook" >/dev/null || true
  hoist service autoscale history hello || true
  timeout 2 hoist events --since 10m --filter type=service 2>/dev/null | tail -n 5 || true   # it follows: cut after 2 s
  say "operators: tokens with roles (admin, deployer, viewer) and the audit log of every write"
  local viewer
  if viewer=$(hoist token create dashboard --role viewer 2>/dev/null); then
    echo "the dashboard, as a viewer: http://$(ctl_ip 1):7000/ui/#token=$viewer"
  fi
  hoist token ls
  hoist cluster audit --limit 5
  say "a secret (deploy/examples/notes.toml): a file on a tmpfs in the replica, sealed in the controllers, rotated in place"
  printf 'first-password' | hoist secret create notes-password -f -
  hoist service apply --no-resolve-image -f deploy/examples/notes.toml
  wait_for "notes running" 60 sh -c 'hoist service ps notes -o json | grep -q "\"state\": *\"running\""'
  echo "notes reads: $(hoist service exec notes -- cat /run/secrets/notes-password)"
  printf 'second-password' | hoist secret create notes-password -f -
  wait_for "the new version in the running replica" 30 sh -c 'hoist service exec notes -- cat /run/secrets/notes-password | grep -qx second-password'
  wait_for "the replica's SIGHUP" 10 sh -c 'hoist service exec notes -- cat /tmp/reloads 2>/dev/null | grep -q reloaded'
  echo "notes reads: $(hoist service exec notes -- cat /run/secrets/notes-password), and got SIGHUP; the same replica: $(hoist service ps notes -o json | grep -o '"restarts": *[0-9]*' | head -1)"
  hoist secret inspect notes-password
  say "the cluster's certificates: join and operator tokens pin the root; nodes and members talk mutual TLS"
  hoist cluster ca >"$STATE/ca.pem"
  echo "root CA: sha256 $(openssl x509 -in "$STATE/ca.pem" -outform der 2>/dev/null | sha256sum | cut -c1-64) (the digest in $(hoist cluster token | cut -c1-6)... tokens)"
  for i in 1 2; do
    echo "agent $i holds $(openssl x509 -in "$STATE/a$i/tls/node.crt" -noout -ext subjectAltName 2>/dev/null | grep -o 'urn:hoist:node:[a-z0-9-]*'), valid until $(openssl x509 -in "$STATE/a$i/tls/node.crt" -noout -enddate 2>/dev/null | cut -d= -f2)"
  done
  curl -sS --max-time 2 --cacert "$STATE/ca.pem" "https://$(ctl_ip 1):7000/v1/health" && echo "  <- member 1 over TLS, verified with the root"
  echo "Done. export HOIST_CONTROLLER=$HOIST_CONTROLLER HOIST_TOKEN=\$(cat $STATE/c1/admin.token) (or hoist cluster login); then try: hoist service ls; hoist stack ps shop; hoist stack history shop; hoist service scale hello 1 (within its autoscale bounds; a scale is no new version: hoist service history hello); hoist service autoscale history hello; hoist node drain NODE; hoist service logs -f hello; hoist service exec hello -- hostname; hoist events; $0 down"
}

status() {
  hoist cluster status
  hoist node ls
  hoist service ps hello || true
  hoist stack ps shop || true
  hoist secret ls || true
}

down() {
  for i in 1 2; do
    local sock="$RUN/a$i.sock"
    if [ -S "$sock" ]; then
      for c in $(HOIST_AGENT=$sock hoist ps -aq 2>/dev/null); do HOIST_AGENT=$sock hoist rm -f "$c" >/dev/null 2>&1 || true; done
    fi
  done
  # The overlay's userspace devices outlive their agents by design: stop them too.
  for i in 1 2; do rm -f "/var/run/wireguard/hqs-wg$i.sock"; pkill -9 -f "__wg hqs-wg$i\$" 2>/dev/null || true; done
  for f in "$RUN"/*.pid; do
    [ -f "$f" ] || continue
    kill -9 "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  # Containers outlive their agent by design, and a worker still connected to the controllers
  # restarts a replica removed above: end every supervisor of this cluster and what it runs.
  kill_tree() { local c; for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill -9 "$1" 2>/dev/null || true; }
  for p in $(pgrep -f "__shim $STATE/" || true); do kill_tree "$p"; done
  for n in "${CONTROLLERS[@]}" "${AGENTS[@]}"; do ip netns del "hoist-qs-$n" 2>/dev/null || true; done
  ip link del "$BR" 2>/dev/null || true
  # Netns bind mounts of containers live under the agents' data dirs.
  { grep -o " $STATE/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for i in 1 2; do
    for d in /sys/fs/cgroup/*/hoist/qs-a$i /sys/fs/cgroup/hoist/qs-a$i /sys/fs/cgroup/unified/hoist/qs-a$i; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
  # The shared `hoist` parents, when nothing else (a host agent) uses them.
  for d in /sys/fs/cgroup/*/hoist /sys/fs/cgroup/hoist; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$STATE" "$RUN"
  echo "local cluster removed"
}

case "${1:-up}" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
