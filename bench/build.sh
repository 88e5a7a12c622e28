#!/usr/bin/env bash
# Image builds, side by side in one run on the same Dockerfile and build context,
# by `hoist build` (CLI -> agent) and by `podman build` (Debian's podman 4.3, installed here only):
#   1. A single-stage Dockerfile (busybox, 2 RUN, 2 COPY of 201 files): a fully cached rebuild, and
#      a rebuild after one copied file changed. -> bench/results/build-<date>.{md,json}
#   2. A multi-stage Go build with a cache mount (tests/testdata/go-primes: `FROM golang:1.19 AS
#      build`, `RUN --mount=type=cache,target=/root/.cache/go-build go build`, `FROM scratch`,
#      `COPY --from=build`), on a golang:1.19 image made by deploy/go-toolchain-image.sh and loaded
#      into both: a fully cached rebuild, a rebuild after main.go changed, a `--no-cache` build (the
#      cache mount kept, as both tools keep it), and a cold build (`--no-cache` with both tools'
#      cache-mount directories emptied first). -> bench/results/build-multistage-<date>.{md,json}
# Run as root. Not part of the test suite. Takes the shared CPU lock itself (for the build and each
# measurement); do not run it under that lock. No network: RUN steps of both tools run with
# network none, and the agent runs in a network namespace of its own.
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
# TMPDIR: podman's temp files and buildah's cache-mount directories ($TMPDIR/buildah-cache) stay
# in the run's directory too.
podman=(env TMPDIR="$work/podman-tmp" podman --root "$work/podman-root" --runroot "$work/podman-run" --storage-driver overlay)
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

mkdir -p "$work/podman-tmp"
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
# (`ls | wc -l > count.txt` races with the shell creating count.txt: 200 or 201 files. podman
# 4.3's `run` needs explicit nofile and nproc limits in this setup, or runc fails setting them:
# "error setting rlimit type 6"; its builds do not.)
case "$("$bin/hoist" run --rm --network none bench:1)" in 200|201) ;; *) echo "hoist-built image does not run" >&2; exit 1 ;; esac
case "$("${podman[@]}" run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 bench:1)" in
  200|201) ;; *) echo "warning: podman-built image did not run" >&2 ;;
esac

q() { printf '%q ' "$@"; }
# Each measurement starts with `sync`: hoist's layer commits call syncfs, which would otherwise
# also pay for writing back whatever else (an earlier build, the image loads) left dirty.
sync; flock /tmp/hoist-cpu.lock hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/cached.json" \
  -n "hoist build (fully cached)" "$(q "${hoist_build[@]}")" \
  -n "podman build (fully cached)" "$(q "${podman_build[@]}")" >&2
# One copied file changes before every run: the steps from `COPY app/` on run again.
touch_one="head -c 4096 /dev/urandom > $ctx/app/file1.bin"
sync; flock /tmp/hoist-cpu.lock hyperfine --warmup 1 --runs "$(( runs / 3 > 5 ? runs / 3 : 5 ))" --export-json "$work/changed.json" \
  --prepare "$touch_one" -n "hoist build (one file changed)" "$(q "${hoist_build[@]}")" \
  --prepare "$touch_one" -n "podman build (one file changed)" "$(q "${podman_build[@]}")" >&2

# 2. The multi-stage Go build. The toolchain image (a docker-archive) is loaded into both.
deploy/go-toolchain-image.sh "$work/golang.tar" >/dev/null
"$bin/hoist" image load -i "$work/golang.tar" >/dev/null
"${podman[@]}" load -i "$work/golang.tar" >/dev/null
rm "$work/golang.tar"
goctx=$work/goctx
cp -r tests/testdata/go-primes "$goctx"
hoist_go=("$bin/hoist" build -q -t godemo:1 "$goctx")
podman_go=("${podman[@]}" build -q --pull=never --network none -t godemo:1 "$goctx")
"${hoist_go[@]}" >/dev/null
"${podman_go[@]}" >/dev/null
expect="hello from go: 168 primes below 1000, sum 76127, last 997"
[ "$("$bin/hoist" run --rm --network none godemo:1 | head -n1)" = "$expect" ] || { echo "hoist-built Go image does not run" >&2; exit 1; }
[ "$("${podman[@]}" run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 godemo:1 | head -n1)" = "$expect" ] \
  || echo "warning: podman-built Go image did not run" >&2
hoist_cache=$work/data/build/cache-mounts
podman_cache=$work/podman-tmp/buildah-cache
[ -n "$(ls -A "$hoist_cache")" ] && [ -n "$(ls -A "$podman_cache")" ] || { echo "a cache mount is empty after the first build" >&2; exit 1; }
few=$(( runs / 3 > 5 ? runs / 3 : 5 ))
sync; flock /tmp/hoist-cpu.lock hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/go-cached.json" \
  -n "hoist build (fully cached)" "$(q "${hoist_go[@]}")" \
  -n "podman build (fully cached)" "$(q "${podman_go[@]}")" >&2
# main.go gets a new greeting before every run: `COPY . .` and every step after it run again, and
# `go build` compiles the main package (primes comes from the kept Go build cache) and links.
change_main="sed -i \"s/^const greeting = .*/const greeting = \\\"run-\$(date +%s%N)\\\"/\" $goctx/main.go"
sync; flock /tmp/hoist-cpu.lock hyperfine --warmup 1 --runs "$few" --export-json "$work/go-changed.json" \
  --prepare "$change_main" -n "hoist build (main.go changed)" "$(q "${hoist_go[@]}")" \
  --prepare "$change_main" -n "podman build (main.go changed)" "$(q "${podman_go[@]}")" >&2
# --no-cache: every step runs again; the cache mount (Go's build cache) is kept by both tools.
sync; flock /tmp/hoist-cpu.lock hyperfine -N --warmup 1 --runs "$few" --export-json "$work/go-nocache.json" \
  -n "hoist build (--no-cache)" "$(q "${hoist_go[@]}" --no-cache)" \
  -n "podman build (--no-cache)" "$(q "${podman_go[@]}" --no-cache)" >&2
# Cold: --no-cache and both cache-mount directories emptied before every run (Go compiles both
# packages of the module; the standard library comes precompiled with the toolchain image).
empty_caches="rm -rf $hoist_cache/* $podman_cache"
sync; flock /tmp/hoist-cpu.lock hyperfine --warmup 1 --runs "$few" --export-json "$work/go-cold.json" \
  --prepare "$empty_caches" -n "hoist build (cold)" "$(q "${hoist_go[@]}" --no-cache)" \
  --prepare "$empty_caches" -n "podman build (cold)" "$(q "${podman_go[@]}" --no-cache)" >&2
hoist_size=$("$bin/hoist" image ls -o json | python3 -c 'import json,sys; print(next(i["size"] for i in json.load(sys.stdin) if "godemo:1" in i["references"]))')
podman_size=$("${podman[@]}" image inspect --format '{{.Size}}' godemo:1)
base_size=$("$bin/hoist" image ls -o json | python3 -c 'import json,sys; print(next(i["size"] for i in json.load(sys.stdin) if "golang:1.19" in i["references"]))')

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
python3 - "$work" "bench/results/build-multistage-$date" "$runs" "$few" "$hoist_size" "$podman_size" "$base_size" <<'PY'
import json, sys, platform, os
work, out, runs, few = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hoist_size, podman_size, base_size = (int(x) for x in sys.argv[5:8])
res = {}
for f in ("go-cached", "go-changed", "go-nocache", "go-cold"):
    for r in json.load(open(f"{work}/{f}.json"))["results"]:
        res[r["command"]] = {k: r[k] * 1000 for k in ("median", "mean", "stddev", "min", "max")}
lines = [
    f"# Multi-stage image build with a cache mount, {os.uname().nodename}, {platform.machine()}, {os.cpu_count()} CPUs",
    "",
    "Medians in one run of `bench/build.sh`; the same Go module and Dockerfile for both",
    "(`tests/testdata/go-primes`: `FROM golang:1.19 AS build`, `COPY`, `RUN --mount=type=cache,target=/root/.cache/go-build",
    "go build`, `FROM scratch`, `COPY --from=build`, `ENTRYPOINT`; 8 steps, two Go packages), on the golang:1.19",
    "image of `deploy/go-toolchain-image.sh` loaded into both. Ratio = podman / hoist (higher is faster).",
    "",
    "| what | runs | hoist ms | podman ms | ratio |",
    "| --- | ---: | ---: | ---: | ---: |",
]
rows = [
    ("fully cached", "rebuild, fully cached", runs),
    ("main.go changed", "rebuild, main.go changed", few),
    ("--no-cache", "`--no-cache` (cache mount kept)", few),
    ("cold", "cold: `--no-cache`, cache mounts emptied", few),
]
for key, what, n in rows:
    h, p = res[f"hoist build ({key})"], res[f"podman build ({key})"]
    lines.append(f"| {what} | {n} | {h['median']:.1f} ± {h['stddev']:.1f} | {p['median']:.1f} ± {p['stddev']:.1f} | {p['median'] / h['median']:.1f}x |")
lines += [
    "",
    "(± is the standard deviation.) Final image: hoist {:.1f} MB, podman {:.1f} MB (one layer: the binary).".format(hoist_size / 1e6, podman_size / 1e6),
    "Toolchain image as stored by hoist: {:.0f} MB.".format(base_size / 1e6),
]
open(out + ".md", "w").write("\n".join(lines) + "\n")
json.dump({"ms": res, "runs": {"cached": runs, "other": few},
           "final_image_bytes": {"hoist": hoist_size, "podman": podman_size}, "toolchain_image_bytes_hoist": base_size},
          open(out + ".json", "w"), indent=2)
print("\n".join(lines))
PY
