#!/usr/bin/env bash
# Per-container metrics of a node with N containers (default 200), Hoist and Docker Engine side
# by side in one run. Every container: busybox `sleep`, bridge network, a 32 MiB memory limit.
#
# - Hoist: one `GET /metrics` of the agent (`--metrics-listen`, default 127.0.0.1:9323, scraped
#   from inside its network namespace) gives every container's CPU, memory and limit, network,
#   pids, restarts, OOM kills. Timed with `hey -c 1` over SCRAPES scrapes (p50/p99), size with curl,
#   checked with `promtool check metrics`; the agent's own file-reading time is in the answer.
# - Docker Engine (docker.io from Debian, contained by bench/lib/docker.sh) has no per-container
#   Prometheus endpoint: its `--metrics-addr` serves engine metrics only (scraped too, to show it).
#   Per-container numbers come from `docker stats --no-stream` (every container) and from the
#   engine API's `GET /containers/ID/stats?stream=false&one-shot=true`, once per container, over
#   one keep-alive connection and 8 in parallel: what an exporter for Docker has to do.
#
# Writes bench/results/metrics-<date>.{md,json}. Run as root, on an otherwise idle machine. Not
# part of the test suite. Removes every container, namespace and cgroup it made.
#
#   bench/metrics.sh [N] [SCRAPES]        (default 200, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
scrapes=${2:-200}
rounds=${ROUNDS:-5}
profile=${BENCH_PROFILE:-release}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh >/dev/null
. bench/lib/docker.sh
docker_install
if [ "$profile" = release ]; then hcargo build --release -p hoist-agent -p hoist-cli -q; fi
bin=$PWD/target/x86_64-unknown-linux-gnu/$profile
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
ns=hmb-$id
work=$(mktemp -d /tmp/hoist-metrics-bench.XXXXXX)
sock=$work/agent.sock
cleanup() {
  set +e
  if [ -S "$sock" ]; then
    HOIST_AGENT=$sock "$bin/hoist" rm -f $(HOIST_AGENT=$sock "$bin/hoist" ps -aq 2>/dev/null) >/dev/null 2>&1
  fi
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null
  sleep 0.2
  pkill -9 -f "__shim $work" 2>/dev/null
  for d in /sys/fs/cgroup/*/hoist-mb-$id /sys/fs/cgroup/hoist-mb-$id; do
    [ -d "$d" ] || continue
    for c in "$d"/*/; do [ -f "$c/cgroup.procs" ] && xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null; done
  done
  sleep 0.3
  for d in /sys/fs/cgroup/*/hoist-mb-$id /sys/fs/cgroup/hoist-mb-$id; do
    [ -d "$d" ] && { rmdir "$d"/* 2>/dev/null; rmdir "$d" 2>/dev/null; }
  done
  for f in "$work"/data/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap 'set +e; docker_down; cleanup' EXIT

# --- Hoist: an agent in a network namespace of its own, N containers.
ip netns add "$ns"
ip -n "$ns" link set lo up
nsenter --net=/run/netns/$ns "$bin/hoist-agent" --data-dir "$work/data" --socket "$sock" \
  --cgroup-parent "hoist-mb-$id" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
export HOIST_AGENT=$sock
deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
"$bin/hoist" image import "$work/busybox.tar" busybox >/dev/null
echo "starting $n Hoist containers" >&2
for i in $(seq "$n"); do
  "$bin/hoist" run -d --name "m$i" --memory 32m busybox sleep 1000000 >/dev/null
done
in_ns() { nsenter --net=/run/netns/$ns "$@"; }
url=http://127.0.0.1:9323/metrics
running=$(in_ns curl -sf "$url" | grep -c '^hoist_container_running{.*} 1' || true)
[ "$running" = "$n" ] || { echo "the agent reports $running running containers, not $n" >&2; exit 1; }
in_ns curl -sf -o "$work/hoist.txt" "$url"
promtool check metrics <"$work/hoist.txt" >&2
hoist_bytes=$(stat -c %s "$work/hoist.txt")
hoist_series=$(grep -c '^hoist_container_' "$work/hoist.txt")
in_ns hey -n 20 -c 1 "$url" >/dev/null # warm-up
in_ns hey -n "$scrapes" -c 1 -o csv "$url" >"$work/hoist-hey.csv"
collect=()
for _ in $(seq 20); do
  collect+=("$(in_ns curl -sf "$url" | awk '/^hoist_agent_metrics_collect_duration_seconds /{print $2}')")
done

# --- Docker Engine: N equivalent containers, measured the ways it offers.
DOCKER_FLAGS="--metrics-addr 127.0.0.1:9323" docker_up "hmb-$id-d" "$work/docker" 10.199.$((RANDOM % 200 + 20)).2
docker import "$work/busybox.tar" hoist-bench-busybox >/dev/null
echo "starting $n Docker containers" >&2
seq "$n" | xargs -P 4 -I{} /usr/bin/docker run -d --name "m{}" --memory 32m hoist-bench-busybox sleep 1000000 >/dev/null
dsock=${DOCKER_HOST#unix://}
[ "$(docker ps -q | wc -l)" = "$n" ] || { echo "docker runs $(docker ps -q | wc -l) containers, not $n" >&2; exit 1; }
docker ps -q --no-trunc >"$work/ids"
urls=()
while read -r c; do urls+=("http://localhost/containers/$c/stats?stream=false&one-shot=true"); done <"$work/ids"
# Milliseconds between two $EPOCHREALTIME readings (taken around the command, nothing else).
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
stats_ms=(); api_seq_ms=(); api_par_ms=()
for _ in $(seq "$rounds"); do
  t=$EPOCHREALTIME; docker stats --no-stream --format '{{json .}}' >"$work/docker-stats.txt"; e=$EPOCHREALTIME
  stats_ms+=("$(ms "$t" "$e")")
  t=$EPOCHREALTIME
  curl -sf --no-progress-meter --parallel --parallel-max 8 --unix-socket "$dsock" "${urls[@]}" >"$work/docker-api.txt"
  e=$EPOCHREALTIME
  api_par_ms+=("$(ms "$t" "$e")")
done
# One at a time each request waits for the engine's next collection tick (about a second): one
# round is enough to see it.
t=$EPOCHREALTIME; curl -sf --unix-socket "$dsock" "${urls[@]}" >/dev/null; e=$EPOCHREALTIME
api_seq_ms+=("$(ms "$t" "$e")")
stats_bytes=$(stat -c %s "$work/docker-stats.txt")
api_bytes=$(stat -c %s "$work/docker-api.txt")
[ "$(wc -l <"$work/docker-stats.txt")" = "$n" ] || { echo "docker stats listed $(wc -l <"$work/docker-stats.txt") containers" >&2; exit 1; }
dversion=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
# Docker's own Prometheus endpoint: engine metrics; count the samples that name a container.
nsenter --net=/run/netns/hmb-$id-d curl -sf -o "$work/docker-metrics.txt" http://127.0.0.1:9323/metrics
dmetrics_bytes=$(stat -c %s "$work/docker-metrics.txt")
dmetrics_samples=$(grep -vc '^#' "$work/docker-metrics.txt" || true)
dmetrics_container=$(grep -v '^#' "$work/docker-metrics.txt" | grep -c -F -f <(cut -c1-12 "$work/ids") || true)

date=$(date -u +%Y-%m-%d)
out=bench/results/metrics-$date
python3 - "$work/hoist-hey.csv" "$out" "$n" "$scrapes" "$rounds" "$hoist_bytes" "$hoist_series" \
  "${collect[*]}" "${stats_ms[*]}" "${api_seq_ms[*]}" "${api_par_ms[*]}" "$stats_bytes" "$api_bytes" "$dversion" \
  "$dmetrics_bytes" "$dmetrics_samples" "$dmetrics_container" <<'PY'
import csv, json, os, platform, statistics, sys
(hey, out, n, scrapes, rounds, hoist_bytes, hoist_series, collect, stats_ms, api_seq_ms, api_par_ms,
 stats_bytes, api_bytes, dversion, dm_bytes, dm_samples, dm_container) = sys.argv[1:]
lat = sorted(float(r["response-time"]) * 1000 for r in csv.DictReader(open(hey)))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]
floats = lambda s: [float(x) for x in s.split()]
collect = [x * 1000 for x in floats(collect)]
rows = [
    ("Hoist agent `GET /metrics` (every container, Prometheus text)", pct(lat, 50), pct(lat, 99), len(lat), int(hoist_bytes)),
    ("Docker `docker stats --no-stream` (every container, table as JSON lines)", pct(floats(stats_ms), 50), max(floats(stats_ms)), int(rounds), int(stats_bytes)),
    ("Docker API `stats?one-shot=true` × N, one at a time (one keep-alive connection)", pct(floats(api_seq_ms), 50), max(floats(api_seq_ms)), len(floats(api_seq_ms)), int(api_bytes)),
    ("Docker API `stats?one-shot=true` × N, 8 in parallel", pct(floats(api_par_ms), 50), max(floats(api_par_ms)), int(rounds), int(api_bytes)),
]
hoist_p50 = rows[0][1]
lines = [
    f"# Per-container metrics of {n} containers: Hoist vs Docker Engine ({os.uname().nodename}, {platform.machine()}, {os.cpu_count()} CPUs)",
    "",
    f"Every container: busybox `sleep`, bridge network, 32 MiB memory limit; both sets running during the whole run. Docker Engine {dversion}.",
    "The time is for every container's numbers, once. Max instead of p99 where there are fewer than 100 samples.",
    "",
    "| how | p50 ms | p99 (or max) ms | samples | bytes | p50 vs Hoist |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
]
for name, p50, p99, k, b in rows:
    lines.append(f"| {name} | {p50:.1f} | {p99:.1f} | {k} | {b} | {p50 / hoist_p50:.1f}x |")
lines += [
    "",
    f"Hoist's answer: {hoist_series} per-container samples, `promtool check metrics` clean. The agent's own time reading the cgroup and `/proc/PID/net/dev` files (`hoist_agent_metrics_collect_duration_seconds`, 20 scrapes): median {statistics.median(collect):.1f} ms, max {max(collect):.1f} ms.",
    f"Docker's own `/metrics` (`dockerd --metrics-addr`): {dm_bytes} bytes, {dm_samples} samples, {dm_container} of them about a container: engine metrics only, so per-container numbers for Prometheus need an exporter making the API calls above (cAdvisor reads cgroups instead).",
    "Target (issue 16): a scrape of an agent with 200 containers ≤ 50 ms.",
]
open(out + ".md", "w").write("\n".join(lines) + "\n")
json.dump({
    "containers": int(n),
    "hoist_scrape_ms": {"p50": hoist_p50, "p99": rows[0][2], "n": len(lat)},
    "hoist_bytes": int(hoist_bytes), "hoist_container_samples": int(hoist_series),
    "hoist_collect_ms": collect,
    "docker_stats_ms": floats(stats_ms), "docker_api_sequential_ms": floats(api_seq_ms),
    "docker_api_parallel8_ms": floats(api_par_ms), "docker_stats_bytes": int(stats_bytes),
    "docker_api_bytes": int(api_bytes), "docker_version": dversion,
    "docker_metrics": {"bytes": int(dm_bytes), "samples": int(dm_samples), "container_samples": int(dm_container)},
}, open(out + ".json", "w"), indent=2)
print("\n".join(lines))
PY
