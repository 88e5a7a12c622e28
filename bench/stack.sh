#!/usr/bin/env bash
# Stacks: the same Compose file deployed by `hoist stack deploy` and by Docker Swarm's
# `docker stack deploy`, side by side in one run. Three services (web ×W, api ×W, db ×1) of
# busybox `sleep` containers, no health checks (so "running" means the same on both sides).
#
# - Deploy: from the command to every replica of every service running. `hoist stack deploy`
#   waits for the release's verdict itself; `docker stack deploy` returns at once, so its time is
#   measured until `docker service ls` shows every service at n/n.
# - A broken release: the api's image changed to one that does not exist. Hoist rolls the whole
#   release back and exits non-zero (the time is to that verdict); Swarm has no stack rollback:
#   its api update just stays unconverged (reported, not timed).
#
# One controller and one agent (each in a network namespace on a lab bridge, as in
# bench/orchestration.sh); dockerd contained by bench/lib/docker.sh. Run as root. Not part of the
# test suite. Writes bench/results/stack-<date>.md.
#
#   bench/stack.sh [W] [RUNS]       (default 20, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
width=${1:-20}
runs=${2:-3}
profile=${BENCH_PROFILE:-release}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh >/dev/null
if [ "$profile" = release ]; then cargo build --release --workspace --bins -q; fi
bin=$PWD/target/x86_64-unknown-linux-gnu/$profile
work=$(mktemp -d /tmp/hoist-stack-bench.XXXXXX)
. bench/lib/lab.sh
trap 'set +e; [ "$(type -t docker_down)" = function ] && docker_down; lab_down' EXIT
lab_up sb 1
sock=$work/agent1.sock

compose() { # API_IMAGE: the Compose file both systems deploy
  cat <<EOF
version: "3.8"
services:
  web:
    image: busybox
    command: ["sleep", "100000"]
    deploy: {replicas: $width}
  api:
    image: $1
    command: ["sleep", "100000"]
    deploy:
      replicas: $width
      update_config: {parallelism: 5, monitor: 2s}
  db:
    image: busybox
    command: ["sleep", "100000"]
    stop_signal: SIGINT
    deploy: {replicas: 1}
EOF
}
compose busybox >"$work/good.yaml"
compose hoist-bench-no-such-image:1 >"$work/broken.yaml"
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }

hoist_deploy=()
hoist_rollback=()
for r in $(seq "$runs"); do
  t0=$(date +%s.%N)
  "$bin/hoist" stack deploy -c "$work/good.yaml" --no-resolve-image "hs$r" >/dev/null
  t1=$(date +%s.%N)
  hoist_deploy+=("$(secs "$t0" "$t1")")
  t0=$(date +%s.%N)
  if "$bin/hoist" stack deploy -c "$work/broken.yaml" --no-resolve-image "hs$r" >/dev/null 2>"$work/err"; then
    echo "the broken release did not fail" >&2; exit 1
  fi
  t1=$(date +%s.%N)
  grep -q "rolled back" "$work/err" || { cat "$work/err" >&2; exit 1; }
  hoist_rollback+=("$(secs "$t0" "$t1")")
  echo "hoist run $r: deploy ${hoist_deploy[-1]} s, broken release rolled back in ${hoist_rollback[-1]} s"
  "$bin/hoist" stack rm "hs$r" >/dev/null
  until [ "$(HOIST_AGENT=$sock "$bin/hoist" ps -q | wc -l)" = 0 ]; do sleep 0.2; done
done

swarm="not measured (BENCH_DOCKER=1 measures it)"
swarm_broken="not measured"
if [ "${BENCH_DOCKER:-0}" = 1 ]; then
  . bench/lib/docker.sh
  docker_install
  docker_up "hsb-$LAB_ID-d" "$work/docker" 10.99.$((RANDOM % 200 + 20)).1
  docker swarm init --advertise-addr d0 >/dev/null
  docker import "$work/busybox.tar" busybox >/dev/null
  converged() { # STACK: every service at n/n
    docker stack services "$1" --format '{{.Replicas}}' | awk -F/ '$1 != $2 { bad = 1 } END { exit bad }'
  }
  swarm_runs=()
  for r in $(seq "$runs"); do
    t0=$(date +%s.%N)
    docker stack deploy -c "$work/good.yaml" "ds$r" >/dev/null 2>&1
    until [ "$(docker stack services "ds$r" -q | wc -l)" = 3 ] && converged "ds$r"; do sleep 0.2; done
    t1=$(date +%s.%N)
    swarm_runs+=("$(secs "$t0" "$t1")")
    echo "swarm run $r: deploy ${swarm_runs[-1]} s"
    if [ "$r" = 1 ]; then
      docker stack deploy -c "$work/broken.yaml" ds1 >/dev/null 2>&1
      sleep 30
      swarm_broken="after 30 s: $(docker stack services ds1 --format '{{.Name}} {{.Replicas}}' | tr '\n' ';') \
(\`docker stack deploy\` exited 0 at once; no service was rolled back)"
    fi
    docker stack rm "ds$r" >/dev/null
    until [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=ds$r")" ]; do sleep 0.5; done
  done
  swarm="${swarm_runs[*]}"
  docker_down
fi

date=$(date -u +%F)
out=bench/results/stack-$date.md
{
  echo "# Stacks: one Compose file, 3 services ($width + $width + 1 replicas), 1 agent host ($date, $profile build)"
  echo
  echo "| system | deploy → every replica running, runs (s) | broken api image |"
  echo "| --- | --- | --- |"
  echo "| Hoist \`stack deploy\` (1 controller, 1 agent) | ${hoist_deploy[*]} | whole release rolled back, non-zero exit, in ${hoist_rollback[*]} s |"
  echo "| Docker Swarm \`stack deploy\` (docker.io $(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,), 1 engine) | $swarm | $swarm_broken |"
  echo
  python3 - "${hoist_deploy[*]}" "$swarm" <<'PY'
import statistics, sys
h = [float(x) for x in sys.argv[1].split()]
try:
    s = [float(x) for x in sys.argv[2].split()]
except ValueError:
    s = []
line = f"Median deploy: Hoist {statistics.median(h):.2f} s"
if s:
    line += f", Swarm {statistics.median(s):.2f} s: Hoist is {statistics.median(s) / statistics.median(h):.1f}x faster."
print(line)
PY
  echo
  echo "Command: \`BENCH_DOCKER=${BENCH_DOCKER:-0} BENCH_PROFILE=$profile bench/stack.sh $width $runs\`"
} >"$out"
cat "$out"
