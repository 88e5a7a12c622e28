#!/usr/bin/env bash
# Image builds, side by side in one run on the same Dockerfile and build context:
#   a fully cached rebuild, and a rebuild after one copied file changed,
#   by `hoist build` (CLI -> agent) and by `podman build` (Debian's podman 4.3, installed here only).
# Writes bench/results/build-<date>.{md,json}. Run as root. Not part of the test suite. Takes the
# shared CPU lock itself (for the build and each measurement); do not run it under that lock.
#
#   bench/build.sh [RUNS]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v podman >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null

flock /tmp/hoist-cpu.lock cargo build --release -p hoist-agent -p hoist-cli -q
bin=$PWD/target/x86_64-unknown-linux-gnu/release
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
ns=hoist-bench-$id
work=$(mktemp -d /tmp/hoist-bench-build.XXXXXX)
sock=$work/agent.sock
podman=(podman --root "$work/podman-root" --runroot "$work/podman-run" --storage-driver overlay)
cleanup() {
  set +e
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  for d in /sys/fs/cgroup/*/hoist-bench-$id /sys/fs/cgroup/hoist-bench-$id; do
    [ -d "$d" ] && { rmdir "$d"/* 2>/dev/null; rmdir "$d" 2>/dev/null; }
  done
  for f in "$work"/data/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
  "${podman[@]}" system reset -f >/dev/null 2>&1
  grep -o "$work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
nsenter --net=/run/netns/$ns "$bin/hoist-agent" --data-dir "$work/data" --socket "$sock" --cgroup-parent "hoist-bench-$id" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
export HOIST_AGENT=$sock
deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
"$bin/hoist" image import "$work/busybox.tar" busybox >/dev/null
"${podman[@]}" import "$work/busybox.tar" localhost/bench-busybox:latest >/dev/null

# The context: 200 files of 4 KiB in app/, a config file, a .dockerignore, and files it excludes.
ctx=$work/ctx
mkdir -p "$ctx/app" "$ctx/logs"
for i in $(seq 200); do head -c 4096 /dev/urandom > "$ctx/app/file$i.bin"; done
echo "mode=bench" > "$ctx/config.txt"
for i in $(seq 50); do head -c 65536 /dev/urandom > "$ctx/logs/$i.log"; done
printf 'logs\n*.tmp\n' > "$ctx/.dockerignore"
cat > "$ctx/Dockerfile" <<'EOF'
ARG BASE=busybox
FROM $BASE
ENV APP_HOME=/srv/app MODE=bench
RUN mkdir -p /srv/app && echo built > /srv/built.txt
WORKDIR /srv/app
COPY app/ ./
COPY config.txt /etc/app.conf
RUN ls | wc -l > count.txt
USER nobody
EXPOSE 8080
CMD ["sh", "-c", "cat count.txt"]
EOF

hoist_build=("$bin/hoist" build -q -t bench:1 --build-arg BASE=busybox "$ctx")
podman_build=("${podman[@]}" build -q --network none -t bench:1 --build-arg BASE=localhost/bench-busybox:latest "$ctx")
# Fill both caches, and check both images run.
"${hoist_build[@]}" >/dev/null
"${podman_build[@]}" >/dev/null
[ "$("$bin/hoist" run --rm --network none bench:1)" = 200 ] || { echo "hoist-built image does not run" >&2; exit 1; }
# (podman 4.3's `run` needs an explicit nofile limit under this agent-less setup; its builds do not.)
[ "$("${podman[@]}" run --rm --network none --ulimit nofile=1024:1024 bench:1)" = 200 ] || echo "warning: podman-built image did not run" >&2

q() { printf '%q ' "$@"; }
flock /tmp/hoist-cpu.lock hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/cached.json" \
  -n "hoist build (fully cached)" "$(q "${hoist_build[@]}")" \
  -n "podman build (fully cached)" "$(q "${podman_build[@]}")" >&2
# One copied file changes before every run: the steps from `COPY app/` on run again.
touch_one="head -c 4096 /dev/urandom > $ctx/app/file1.bin"
flock /tmp/hoist-cpu.lock hyperfine --warmup 1 --runs "$(( runs / 3 > 5 ? runs / 3 : 5 ))" --export-json "$work/changed.json" \
  --prepare "$touch_one" -n "hoist build (one file changed)" "$(q "${hoist_build[@]}")" \
  --prepare "$touch_one" -n "podman build (one file changed)" "$(q "${podman_build[@]}")" >&2

date=$(date -u +%Y-%m-%d)
out=bench/results/build-$date
python3 - "$work/cached.json" "$work/changed.json" "$out" "$runs" <<'PY'
import json, sys, platform, os
cached, changed, out, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
med = {}
for f in (cached, changed):
    for r in json.load(open(f))["results"]:
        med[r["command"]] = r["median"] * 1000
lines = [
    f"# Image build, {os.uname().nodename}, {platform.machine()}, {os.cpu_count()} CPUs",
    "",
    "Medians in one run of `bench/build.sh`; same Dockerfile (11 steps: 2 RUN, 2 COPY of 201 files)",
    "and context (800 KiB sent, 3.2 MiB excluded by .dockerignore). Ratio = podman / hoist (higher is faster).",
    "",
    "| what | hoist ms | podman ms | ratio |",
    "| --- | ---: | ---: | ---: |",
]
for what in ("fully cached", "one file changed"):
    h, p = med[f"hoist build ({what})"], med[f"podman build ({what})"]
    lines.append(f"| rebuild, {what} | {h:.1f} | {p:.1f} | {p / h:.1f}x |")
open(out + ".md", "w").write("\n".join(lines) + "\n")
json.dump({"medians_ms": med, "runs": int(runs)}, open(out + ".json", "w"), indent=2)
print("\n".join(lines))
PY
