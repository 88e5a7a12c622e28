#!/usr/bin/env bash
# Orchestration: time from `hoist service apply` to 50 replicas running on one agent host.
# One controller member and one agent, each in its own network namespace on a lab bridge (the
# test lab's layout); the replicas are busybox `sleep` containers on the agent's bridge network.
# "Running" is what the controller reports (every slot's task running), cross-checked with the
# agent's own `hoist ps`. With BENCH_DOCKER=1, Docker Swarm mode does the same in the same run
# (docker.io from Debian, one engine in namespaces of its own: bench/lib/docker.sh), then the same
# rolling update.
# Writes bench/results/orchestration-<date>.md. Run as root. Not part of the test suite.
#
#   bench/orchestration.sh [REPLICAS] [RUNS]     (default 50, 3)
#   AGENTS=3 UPDATE=0 bench/orchestration.sh 300 1   (300 replicas over 3 agent hosts, no update)
set -euo pipefail
cd "$(dirname "$0")/.."
replicas=${1:-50}
runs=${2:-3}
agents=${AGENTS:-1}
profile=${BENCH_PROFILE:-release}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh >/dev/null
if [ "$profile" = release ]; then cargo build --release --workspace --bins -q; fi
bin=$PWD/target/x86_64-unknown-linux-gnu/$profile
work=$(mktemp -d /tmp/hoist-orch-bench.XXXXXX)
. bench/lib/lab.sh
trap 'set +e; [ "$(type -t docker_down)" = function ] && docker_down; lab_down orchestration' EXIT
lab_up ob "$agents"
on_agents() { # containers of service $1 on all agents ($2: -a to count exited ones too)
  local n=0
  for i in $(seq "$agents"); do
    n=$((n + $(HOIST_AGENT=$work/agent$i.sock "$bin/hoist" ps ${2:-} -o json | python3 -c "import json,sys; print(sum(1 for c in json.load(sys.stdin) if c['spec']['labels'].get('hoist.service')=='$1'))")))
  done
  echo "$n"
}

running() { # slots whose task the controller reports running
  curl -sf "http://$ctl/v1/services/$1/ps" | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(sum(1 for r in d["replicas"] if r.get("task") and r["task"]["state"]=="running"))' 2>/dev/null || echo 0
}
results=()
for r in $(seq "$runs"); do
  name=bench$r
  printf '{"name":"%s","image":"busybox","command":["sleep","100000"],"replicas":%d}\n' "$name" "$replicas" >"$work/$name.json"
  t0=$(date +%s.%N)
  # `hoist service apply` returns (exit 0) once every replica runs: that is the measure, as
  # `docker service create` until `docker service ps` shows them all Running is Swarm's.
  "$bin/hoist" service apply --no-resolve-image -f "$work/$name.json" >/dev/null
  t1=$(date +%s.%N)
  # Then both the controller and the agent confirm it, outside the timing.
  n=$(running "$name")
  [ "$n" -ge "$replicas" ] || { echo "apply returned with $n of $replicas running" >&2; exit 1; }
  on_agent=$(on_agents "$name")
  secs=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  echo "run $r: $replicas replicas running in ${secs}s (controller reports $n, agents run $on_agent)"
  results+=("$secs")
  "$bin/hoist" service rm "$name" >/dev/null
  until [ "$(on_agents "$name" -a)" = 0 ]; do sleep 0.2; done
done

# A rolling update of those replicas with Swarm's settings from the issue: parallelism 10 and
# Swarm's default monitor window (5 s), stop-first. `hoist service apply` follows the rollout.
spec_upd() { # VALUE
  printf '{"name":"upd","image":"busybox","command":["sleep","100000"],"replicas":%d,"env":{"V":"%s"},"update":{"parallelism":10,"monitor":"5s"}}\n' "$replicas" "$1"
}
update_secs="not run (UPDATE=0)"
if [ "${UPDATE:-1}" = 1 ]; then
  spec_upd 1 >"$work/upd1.json"; spec_upd 2 >"$work/upd2.json"
  "$bin/hoist" service apply --no-resolve-image --timeout 10m -f "$work/upd1.json" >/dev/null
  t0=$(date +%s.%N)
  "$bin/hoist" service apply --no-resolve-image --timeout 10m -f "$work/upd2.json" >/dev/null
  t1=$(date +%s.%N)
  update_secs="$(python3 -c "print(f'{$t1-$t0:.2f}')") s"
  echo "rolling update of $replicas replicas (parallelism 10, monitor 5s): ${update_secs}"
  "$bin/hoist" service rm upd >/dev/null
fi

# Docker Swarm mode side by side (BENCH_DOCKER=1): one engine, contained in its own namespaces
# (bench/lib/docker.sh), the same busybox rootfs, the same replica count, the same update policy.
swarm="not measured (BENCH_DOCKER=1 measures it; the issue's figure for this machine is ≈ 16 s)"
swarm_update="not measured (the issue's figure for this machine is ≈ 70 s)"
if [ "${BENCH_DOCKER:-0}" = 1 ]; then
  . bench/lib/docker.sh
  docker_install
  docker_up "hob-$LAB_ID-d" "$work/docker" 10.99.$((RANDOM % 200 + 20)).1
  docker swarm init --advertise-addr d0 >/dev/null
  docker import "$work/busybox.tar" busybox >/dev/null
  swarm_running() { docker service ps "$1" --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running' || true; }
  swarm_runs=()
  for r in $(seq "$runs"); do
    t0=$(date +%s.%N)
    docker service create --detach --name "sb$r" --replicas "$replicas" busybox sleep 100000 >/dev/null
    until [ "$(swarm_running "sb$r")" -ge "$replicas" ]; do sleep 0.2; done
    t1=$(date +%s.%N)
    secs=$(python3 -c "print(f'{$t1-$t0:.2f}')")
    echo "swarm run $r: $replicas replicas running in ${secs}s"
    swarm_runs+=("$secs")
    docker service rm "sb$r" >/dev/null
    until [ -z "$(docker ps -aq --filter "label=com.docker.swarm.service.name=sb$r")" ]; do sleep 0.5; done
  done
  swarm="${swarm_runs[*]}"
  if [ "${UPDATE:-1}" = 1 ]; then
    docker service create --detach --name supd --replicas "$replicas" --env V=1 \
      --update-parallelism 10 --update-delay 0s --update-monitor 5s busybox sleep 100000 >/dev/null
    until [ "$(swarm_running supd)" -ge "$replicas" ]; do sleep 0.2; done
    t0=$(date +%s.%N)
    docker service update --detach --env-add V=2 supd >/dev/null
    until [ "$(docker service inspect -f '{{.UpdateStatus.State}}' supd)" = completed ]; do sleep 0.2; done
    t1=$(date +%s.%N)
    swarm_update="$(python3 -c "print(f'{$t1-$t0:.2f}')") s"
    echo "swarm rolling update of $replicas replicas (parallelism 10, monitor 5s): ${swarm_update}"
    docker service rm supd >/dev/null
  fi
  docker_down
fi

date=$(date -u +%F)
out=bench/results/orchestration-$date-${agents}x$replicas.md
{
  echo "# Orchestration: apply → $replicas replicas running on $agents agent host(s) ($date, $profile build)"
  echo
  echo "| system | runs (s) |"
  echo "| --- | --- |"
  echo "| Hoist (1 controller, $agents agent(s), lab namespaces) | ${results[*]} |"
  echo "| Docker Swarm mode (docker.io $(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,), 1 engine) | $swarm |"
  echo
  # Medians and the ratio, when Swarm ran in this run.
  python3 - "${results[*]}" "$swarm" <<'PY'
import statistics, sys
h = [float(x) for x in sys.argv[1].split()]
try:
    s = [float(x) for x in sys.argv[2].split()]
except ValueError:
    s = []
line = f"Median: Hoist {statistics.median(h):.2f} s"
if s:
    line += f", Swarm {statistics.median(s):.2f} s: Hoist is {statistics.median(s) / statistics.median(h):.1f}x faster."
print(line)
PY
  echo
  echo "Rolling update of the $replicas replicas (parallelism 10, monitor 5 s, stop-first): Hoist ${update_secs};"
  echo "Swarm: ${swarm_update}."
  echo
  echo "Command: \`BENCH_DOCKER=${BENCH_DOCKER:-0} AGENTS=$agents BENCH_PROFILE=$profile bench/orchestration.sh $replicas $runs\`"
} >"$out"
cat "$out"
