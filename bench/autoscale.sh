#!/usr/bin/env bash
# Autoscaling, side by side in one run:
#
# 1. Webhook → committed replica change. N deliveries of Alertmanager's webhook (each a new alert,
#    alternating up and down) to a 3-member Hoist controller cluster, one at a time; each answer
#    comes once its decision is committed through Raft. The peer: Docker Swarm has no autoscaling;
#    the monitor's equivalent is a service update through the Engine API (what a webhook relay
#    would call), which also answers once its change is committed (swarmkit's Raft, 1 manager).
#    Neither side has a node that can run the replicas (Hoist: no agent; Swarm: an unsatisfiable
#    constraint), so both measure the decision and its commit, not container starts.
# 2. A load that oscillates around its threshold for OSC_SECS (default 10 minutes): the same
#    PromQL query, evaluated by the leader every 15 s against a real Prometheus, drives two
#    services: one with Hoist's policy (cooldown_up 30s, stabilization_down 300s: the defaults),
#    one naive (both 0s). The scale events of each are counted.
#
# Everything on loopback. Run as root; not part of the test suite. Writes
# bench/results/autoscale-<date>.md.
#
#   bench/autoscale.sh            N=1000 OSC_SECS=600 BENCH_DOCKER=1 BENCH_PROFILE=release
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. bench/lib/auth.sh
N=${N:-1000}
OSC_SECS=${OSC_SECS:-600}
profile=${BENCH_PROFILE:-release}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh >/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if [ "$profile" = release ]; then cargo build --release -q -p hoist-controller -p hoist-cli; fi
bin=$root/target/x86_64-unknown-linux-gnu/$profile
work=$(mktemp -d /tmp/hoist-autoscale-bench.XXXXXX)
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ "$(type -t docker_down)" = function ] && docker_down
  rm -rf "$work"
}
trap cleanup EXIT

members=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103
prom=127.0.0.1:29190
export HOIST_CONTROLLER=$members
for i in 1 2 3; do
  mode=(--join 127.0.0.1:27101); [ "$i" = 1 ] && mode=(--bootstrap)
  "$bin/hoist-controller" --data-dir "$work/c$i" --listen "127.0.0.1:2710$i" --id "$i" "${mode[@]}" \
    --prometheus "http://$prom" 2>"$work/c$i.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:2710$i/v1/health" >/dev/null && break; sleep 0.1; done
  [ "$i" = 1 ] && bench_admin_token "$work/c1" "$work"   # the others join with it
done
for _ in $(seq 100); do
  [ "$(curl -sf http://127.0.0.1:27101/v1/cluster/status | python3 -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin)["members"] if m.get("voter")))' 2>/dev/null)" = 3 ] && break
  sleep 0.2
done
token=$("$bin/hoist" hook token create 2>/dev/null)

# 1. Webhook latency.
cat >"$work/hooked.json" <<JSON
{"name": "hooked", "image": "busybox", "command": ["sleep", "1d"], "replicas": 1,
 "autoscale": {"min": 1, "max": 2, "cooldown_up": "0s", "stabilization_down": "0s"}}
JSON
"$bin/hoist" service apply -d --no-resolve-image -f "$work/hooked.json" >/dev/null
leader=$(curl -sf http://127.0.0.1:27101/v1/cluster/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_address"])')
follower=127.0.0.1:27102; [ "$leader" = 127.0.0.1:27102 ] && follower=127.0.0.1:27103
hoist_leader=$(python3 bench/lib/hook_latency.py hoist "$leader" "$token" hooked "$N" leader)
hoist_follower=$(python3 bench/lib/hook_latency.py hoist "$follower" "$token" hooked "$N" follower)
echo "hoist, to the leader: $hoist_leader"
echo "hoist, through a follower: $hoist_follower"

swarm="not measured (BENCH_DOCKER=1 measures it)"
if [ "${BENCH_DOCKER:-1}" = 1 ]; then
  . bench/lib/docker.sh
  docker_install
  id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
  docker_up "hab-$id-d" "$work/docker" 10.99.$((RANDOM % 200 + 20)).1
  docker swarm init --advertise-addr d0 >/dev/null
  deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
  docker import "$work/busybox.tar" busybox >/dev/null
  docker service create -d --name hooked --replicas 1 --constraint node.labels.bench==none busybox sleep 1d >/dev/null
  swarm=$(python3 bench/lib/hook_latency.py swarm "${DOCKER_HOST#unix://}" hooked "$N")
  echo "swarm: $swarm"
  docker_down
fi

# 2. Oscillating load: 300 ± 100 (a square wave of period 30 s) shared by the replicas, 100 per
# replica wanted: 4 replicas at the peak, 2 in the trough.
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
scrape_configs:
  - {job_name: controllers, authorization: {credentials: '$HOIST_TOKEN'}, static_configs: [{targets: ['127.0.0.1:27101', '127.0.0.1:27102', '127.0.0.1:27103']}]}
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" --web.listen-address="$prom" >"$work/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://$prom/-/ready" >/dev/null && break; sleep 0.2; done
osc() { # NAME COOLDOWN_UP STABILIZATION_DOWN
  cat <<JSON
{"name": "$1", "image": "busybox", "command": ["sleep", "1d"], "replicas": 3,
 "autoscale": {"min": 1, "max": 10, $2 $3
   "query": "(300 + 100 * scalar(sgn(sin(vector(2 * pi() * time() / 30))))) / max(hoist_service_replicas_desired{service=\"$1\"})",
   "target_value": 100}}
JSON
}
osc policy "" "" >"$work/policy.json"
osc naive '"cooldown_up": "0s",' '"stabilization_down": "0s",' >"$work/naive.json"
"$bin/hoist" service apply -d --no-resolve-image -f "$work/policy.json" >/dev/null
"$bin/hoist" service apply -d --no-resolve-image -f "$work/naive.json" >/dev/null
echo "oscillating load for $OSC_SECS s..."
sleep "$OSC_SECS"
events() { # SERVICE: decisions that changed the replica count (and the query errors, if any)
  "$bin/hoist" -o json service autoscale history "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)["decisions"]
scaled = [x for x in d if x["source"] == "query" and x["to"] != x["from"]]
errors = [x for x in d if x["reason"].startswith("query failed")]
steps = " ".join(str(x["from"]) + "->" + str(x["to"]) for x in scaled[:12])
print(len(scaled), len(errors), steps or "-")
for x in errors[:3]:
    print(x["detail"], file=sys.stderr)'
}
read -r policy_n policy_err policy_steps < <(events policy)
read -r naive_n naive_err naive_steps < <(events naive)
echo "Hoist's policy: $policy_n scale events ($policy_steps); naive: $naive_n ($naive_steps)"

date=$(date -u +%F)
out=bench/results/autoscale-$date.md
{
  echo "# Autoscaling ($date, $profile build, 3 controller members on loopback)"
  echo
  echo "## Webhook → committed replica change, $N deliveries one at a time"
  echo
  echo "| path | p50 ms | p90 ms | p99 ms | max ms | errors |"
  echo "| --- | --- | --- | --- | --- | --- |"
  python3 - "$hoist_leader" "$hoist_follower" "$swarm" <<'PY'
import json, sys
rows = [("Hoist: Alertmanager webhook to the leader", sys.argv[1]),
        ("Hoist: Alertmanager webhook through a follower", sys.argv[2]),
        ("Docker Swarm: service update through the Engine API (1 manager)", sys.argv[3])]
for name, raw in rows:
    try:
        r = json.loads(raw)
        print(f"| {name} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['errors']} |")
    except ValueError:
        print(f"| {name} | {raw} | | | | |")
PY
  echo
  echo "## A load oscillating around its threshold for $OSC_SECS s (square wave, period 30 s; query every 15 s)"
  echo
  echo "| policy | scale events | first steps | query errors |"
  echo "| --- | --- | --- | --- |"
  echo "| Hoist (cooldown_up 30s, stabilization_down 300s: the defaults) | $policy_n | $policy_steps | $policy_err |"
  echo "| naive (both 0s) | $naive_n | $naive_steps | $naive_err |"
  echo
  echo "Command: \`N=$N OSC_SECS=$OSC_SECS BENCH_DOCKER=${BENCH_DOCKER:-1} BENCH_PROFILE=$profile bench/autoscale.sh\`"
} >"$out"
cat "$out"
