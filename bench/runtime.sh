#!/usr/bin/env bash
# Container start latency, side by side in one run on the same busybox rootfs:
#   hoist run --rm (CLI -> agent -> supervisor -> exec -> exit -> cleanup), with and without a bridge network;
#   the agent's own create-to-exec time (request arrival to execve, reported by the agent);
#   runc run of the same rootfs; docker run --rm when a Docker engine is available (BENCH_DOCKER=1 installs docker.io).
# Writes bench/results/runtime-<date>[-SUFFIX].{md,json}. Run as root. Not part of the test suite.
#
#   bench/runtime.sh [RUNS]     (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine runc >/dev/null
command -v runc >/dev/null || apt-get install -y -qq runc >/dev/null
if [ "${BENCH_DOCKER:-0}" = 1 ] && ! command -v dockerd >/dev/null; then apt-get install -y -qq docker.io >/dev/null; fi

cargo build --release --workspace --bins -q
# Another build (a past release, for a before/after): HOIST_BIN_DIR=DIR.
# More arguments for the agent (e.g. AGENT_ARGS="--supervisor-start exec" for the exec path): AGENT_ARGS=.
# An idle gap before each start, as a single command after a quiet spell sees it (the kernel's cgroup
# lock has gone back to its fast mode, so a start that moves a process into a cgroup waits first):
# GAP=SECONDS, e.g. GAP=0.3. Without it the starts come back to back.
bin=${HOIST_BIN_DIR:-$PWD/target/x86_64-unknown-linux-gnu/release}
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
ns=hoist-bench-$id
work=$(mktemp -d /tmp/hoist-bench.XXXXXX)
sock=$work/agent.sock
cleanup() {
  set +e
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null
  HOIST_AGENT=$sock "$bin/hoist" rm -f $(HOIST_AGENT=$sock "$bin/hoist" ps -aq 2>/dev/null) >/dev/null 2>&1
  sleep 0.2
  pkill -9 -f "__shim $work" 2>/dev/null
  for d in /sys/fs/cgroup/*/hoist-bench-$id /sys/fs/cgroup/hoist-bench-$id; do
    [ -d "$d" ] && { rmdir "$d"/* 2>/dev/null; rmdir "$d" 2>/dev/null; }
  done
  for f in "$work"/data/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  # Mounts left under the work dir (the agents' tmpfs of volatile container files), deepest first.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
nsenter --net=/run/netns/$ns "$bin/hoist-agent" --data-dir "$work/data" --socket "$sock" --cgroup-parent "hoist-bench-$id" ${AGENT_ARGS:-} 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
export HOIST_AGENT=$sock
deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
"$bin/hoist" image import "$work/busybox.tar" busybox >/dev/null

# runc bundle from the same rootfs.
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/busybox.tar"
(cd "$work/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open("config.json", "w"))
PY
)

cmds=(
  -n "hoist run --rm (network none)" "$bin/hoist run --rm --network none busybox true"
  -n "hoist run --rm (bridge)" "$bin/hoist run --rm busybox true"
  -n "runc run (new netns, no network)" "runc run -b $work/bundle hoist-bench-$id"
)
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker image inspect hoist-bench-busybox >/dev/null 2>&1 || docker import "$work/busybox.tar" hoist-bench-busybox >/dev/null
  cmds+=(-n "docker run --rm (network none)" "docker run --rm --network none hoist-bench-busybox true")
  cmds+=(-n "docker run --rm (bridge)" "docker run --rm hoist-bench-busybox true")
fi
gap=()
[ -n "${GAP:-}" ] && gap=(--prepare "sleep $GAP")
hyperfine -N --warmup 5 --runs "$runs" "${gap[@]}" --export-json "$work/hyperfine.json" "${cmds[@]}" >&2

# The agent's own create-to-exec, as it reports it for each container.
c2e() {
  local net=$1
  for _ in $(seq "$runs"); do
    [ -n "${GAP:-}" ] && sleep "$GAP"
    "$bin/hoist" run -d --rm -o json --network "$net" busybox true
  done | python3 -c '
import sys, json, statistics
s, dec, v = sys.stdin.read(), json.JSONDecoder(), []
while s.strip():
    s = s.lstrip()
    obj, n = dec.raw_decode(s)
    v.append(obj["create_to_exec_us"])
    s = s[n:]
print(statistics.median(v) / 1000)'
}
c2e_none=$(c2e none)
c2e_bridge=$(c2e bridge)

date=$(date -u +%Y-%m-%d)
out=bench/results/runtime-$date${SUFFIX:+-$SUFFIX}
python3 - "$work/hyperfine.json" "$c2e_none" "$c2e_bridge" "$out" "$runs" "${GAP:-}" <<'PY'
import json, sys, platform, os
hf, c2e_none, c2e_bridge, out, runs, gap = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
res = {r["command"]: r for r in json.load(open(hf))["results"]}
med = {k: r["median"] * 1000 for k, r in res.items()}
runc = med.get("runc run (new netns, no network)")
rows = [(k, v) for k, v in med.items()]
rows += [("agent create-to-exec (network none)", c2e_none), ("agent create-to-exec (bridge)", c2e_bridge)]
lines = [
    f"# Container start latency, {os.uname().nodename}, {platform.machine()}, {os.cpu_count()} CPUs",
    "",
    f"Medians of {runs} runs each in one run of `bench/runtime.sh`; ratio = runc median / this median (higher is faster)."
    + (f" An idle gap of {gap} s before each start (GAP={gap})." if gap else ""),
    "",
    "| what | median ms | vs runc run |",
    "| --- | ---: | ---: |",
]
for k, v in rows:
    ratio = f"{runc / v:.1f}x" if runc else "-"
    lines.append(f"| {k} | {v:.2f} | {ratio} |")
open(out + ".md", "w").write("\n".join(lines) + "\n")
json.dump({"medians_ms": dict(rows), "runs": int(runs), "gap_s": float(gap) if gap else None}, open(out + ".json", "w"), indent=2)
print("\n".join(lines))
PY
