#!/usr/bin/env bash
# Requests lost during a rolling update of 3 replicas under a steady 2,000 requests/s (hey: 20
# clients × 100 requests/s, every request a new connection since busybox httpd closes each).
#
# Hoist: the lab of the mesh test (3 controllers, 3 agent hosts on the overlay, an external client
# namespace), load through one host's published port (the routing mesh), `hoist service apply`
# of a new env (stop-first, parallelism 1, monitor 1 s, update.drain 1 s):
#   tests/tests/mesh.rs, bench_requests_lost_during_a_rolling_update (ignored in the suite).
# Docker Swarm mode (BENCH_DOCKER=1): one engine contained in namespaces of its own
# (bench/lib/docker.sh), the same busybox image and load, `docker service update --env-add`
# (bench/lib/swarm_lossless.sh says what it can measure on this kernel).
# Writes bench/results/mesh-update-<date>.{md,json}. Run as root. Not part of the test suite.
#
#   bench/mesh-update.sh [RUNS]       (default 3)
#   BENCH_DOCKER=1 bench/mesh-update.sh 3
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh >/dev/null
cargo build --workspace --bins -q
work=$(mktemp -d /tmp/hoist-mesh-bench.XXXXXX)
trap 'set +e; [ "$(type -t docker_down)" = function ] && docker_down; rm -rf "$work"' EXIT

hoist=()
for r in $(seq "$runs"); do
  line=$(cargo test -q -p hoist-tests --test mesh bench_requests_lost_during_a_rolling_update -- \
    --ignored --nocapture 2>/dev/null | grep '^hoist_lost=')
  echo "hoist run $r: $line"
  hoist+=("$line")
done

swarm=()
if [ "${BENCH_DOCKER:-0}" = 1 ]; then
  . bench/lib/docker.sh
  . bench/lib/swarm_lossless.sh
  docker_install
  deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
  docker_up "hmb-$$-d" "$work/docker" 10.98.$((RANDOM % 200 + 20)).1
  for r in $(seq "$runs"); do
    line=$(swarm_lost_requests "$work/docker" "$work/busybox.tar" | grep '^swarm_lost=')
    echo "swarm run $r: $line"
    swarm+=("$line")
  done
  docker_down
fi

date=$(date -u +%F)
out=bench/results/mesh-update-$date
python3 - "$out" "${#hoist[@]}" "${hoist[@]}" "${swarm[@]}" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
rows = [dict(kv.split("=") for kv in line.split()) for line in sys.argv[3:]]
hoist, swarm = rows[:n], rows[n:]
def col(rs, k):
    return [float(r[k]) for r in rs]
res = {
    "hoist": [{k.removeprefix("hoist_"): float(v) for k, v in r.items()} for r in hoist],
    "swarm": [{k.removeprefix("swarm_"): float(v) for k, v in r.items()} for r in swarm],
}
json.dump(res, open(out + ".json", "w"), indent=1)
with open(out + ".md", "w") as f:
    f.write("# Requests lost during a rolling update of 3 replicas at an offered 2,000 requests/s\n\n")
    f.write("| system | lost per run | requests per run | update took (s) |\n| --- | --- | --- | --- |\n")
    for name, rs, p in (("Hoist (routing mesh, drain barrier)", hoist, "hoist_"), ("Docker Swarm mode", swarm, "swarm_")):
        if not rs:
            f.write(f"| {name} | not measured (BENCH_DOCKER=1) | | |\n")
            continue
        f.write(f"| {name} | {' '.join(str(int(x)) for x in col(rs, p + 'lost'))} "
                f"| {' '.join(str(int(x)) for x in col(rs, p + 'total'))} "
                f"| {' '.join(f'{x:.1f}' for x in col(rs, p + 'update_s'))} |\n")
    f.write("\nCommand: `BENCH_DOCKER=<0|1> bench/mesh-update.sh " + str(n) + "`\n")
print(open(out + ".md").read())
PY
