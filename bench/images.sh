#!/usr/bin/env bash
# Image pull + unpack, side by side from the same local registry (Debian's docker-registry on
# loopback inside a private network namespace):
#   hoist image pull   (agent: download -> sha256 -> decompress -> unpack, one pass, layers in parallel,
#                       blobs fsynced and snapshots synced before they become visible)
#   skopeo copy docker://... oci:DIR  +  umoci unpack   (the Debian peers; for zstd, which umoci 0.4.7
#                       cannot unpack, skopeo copy + `zstd -dc | tar -x` per layer)
# for a 5-layer image of tens of MB (busybox + 4 layers of base64-encoded random data), once with
# gzip and once with zstd layers. Each run starts from an empty store / empty directory.
# Writes bench/results/images-<date>.{md,json}. Run as root. Not part of the test suite.
#
#   bench/images.sh [RUNS]     (default 10)
set -euo pipefail
# The whole run holds the machine's shared CPU lock (builds and measurements alike).
[ -n "${HOIST_LOCKED:-}" ] || exec flock /tmp/hoist-cpu.lock env HOIST_LOCKED=1 nice -n 10 "$0" "$@"
cd "$(dirname "$0")/.."
runs=${1:-10}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
deploy/install-deps.sh
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null

cargo build --release -p hoist-agent -p hoist-cli -q
bin=$PWD/target/x86_64-unknown-linux-gnu/release
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
ns=hoist-bench-img-$id
work=$(mktemp -d /tmp/hoist-bench-img.XXXXXX)
sock=$work/agent.sock
cleanup() {
  set +e
  for pid in ${agent_pid:-} ${registry_pid:-}; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  # Mounts left under the work dir (the agents' tmpfs of volatile container files), deepest first.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
in_ns() { nsenter --net=/run/netns/$ns "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:5000
YML
# Started with nsenter directly (not through a shell function) so that $! is the daemon itself
# (nsenter execs it) and the cleanup's kill reaches it: a leftover would keep holding the CPU lock.
nsenter --net=/run/netns/$ns /usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
nsenter --net=/run/netns/$ns "$bin/hoist-agent" --data-dir "$work/data" --socket "$sock" --cgroup-parent "hoist-bench-img-$id" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
export HOIST_AGENT=$sock

# The image: busybox rootfs, then 4 layers of ~10 MB each (base64 of random bytes), one
# unpack/add/repack cycle per layer (`umoci insert` 0.4.7 writes tars without their end blocks,
# which GNU tar refuses).
deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
(
  cd "$work"
  umoci init --layout layout >/dev/null
  umoci new --image layout:img >/dev/null
  umoci unpack --image layout:img bundle >/dev/null
  tar -C bundle/rootfs -xf busybox.tar
  umoci repack --image layout:img bundle >/dev/null
  rm -rf bundle
  for i in 1 2 3 4; do
    umoci unpack --image layout:img bundle >/dev/null
    mkdir -p bundle/rootfs/data$i
    for j in 1 2 3 4 5; do head -c 1500000 /dev/urandom | base64 > bundle/rootfs/data$i/f$j; done
    umoci repack --image layout:img bundle >/dev/null
    rm -rf bundle
  done
  umoci config --image layout:img --config.cmd /bin/sh --os linux --architecture amd64 >/dev/null
  skopeo copy -q --dest-compress-format zstd --dest-compress oci:layout:img oci:zlayout:img
)
in_ns skopeo copy -q --dest-tls-verify=false "oci:$work/layout:img" docker://127.0.0.1:5000/bench/img:gzip
in_ns skopeo copy -q --dest-tls-verify=false "oci:$work/zlayout:img" docker://127.0.0.1:5000/bench/img:zstd
"$bin/hoist" image pull 127.0.0.1:5000/bench/img:gzip >/dev/null
"$bin/hoist" image pull 127.0.0.1:5000/bench/img:zstd >/dev/null
"$bin/hoist" image inspect 127.0.0.1:5000/bench/img:gzip 127.0.0.1:5000/bench/img:zstd | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    print("image %s: %d layers, %.1f MB compressed, %.1f MB unpacked" % (i["references"][-1], len(i["layers"]),
          sum(l["size"] for l in i["layers"]) / 1e6, i["size"] / 1e6))'

# The peer for zstd: umoci 0.4.7 cannot unpack zstd layers ("blob is not correct mediatype"), so
# skopeo copy + `zstd -dc | tar -x` per layer, in order (a lower bound: no whiteout handling).
cat > "$work/zstd-unpack.sh" <<'SH'
#!/bin/sh
set -e
layout=$1 out=$2
mkdir -p "$out"
manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"].split(":")[1])' "$layout")
for l in $(python3 -c 'import json,sys; [print(x["digest"].split(":")[1]) for x in json.load(open(sys.argv[1]))["layers"]]' "$layout/blobs/sha256/$manifest"); do
  zstd -dcq "$layout/blobs/sha256/$l" | tar -C "$out" -xf -
done
SH
chmod +x "$work/zstd-unpack.sh"

reset_hoist="$bin/hoist image rm 127.0.0.1:5000/bench/img:gzip 127.0.0.1:5000/bench/img:zstd >/dev/null 2>&1; $bin/hoist image prune >/dev/null"
reset_peer="rm -rf $work/peer $work/peer-bundle"
date=$(date -u +%Y-%m-%d)
mkdir -p bench/results
hyperfine -N --runs "$runs" --warmup 1 \
  --export-json "bench/results/images-$date.json" --export-markdown "bench/results/images-$date.md" \
  --prepare "sh -c '$reset_hoist'" -n "hoist pull (gzip)" "$bin/hoist image pull 127.0.0.1:5000/bench/img:gzip" \
  --prepare "sh -c '$reset_peer'" -n "skopeo copy + umoci unpack (gzip)" \
    "nsenter --net=/run/netns/$ns sh -c 'skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/bench/img:gzip oci:$work/peer:img && umoci unpack --image $work/peer:img $work/peer-bundle >/dev/null'" \
  --prepare "sh -c '$reset_hoist'" -n "hoist pull (zstd)" "$bin/hoist image pull 127.0.0.1:5000/bench/img:zstd" \
  --prepare "sh -c '$reset_peer'" -n "skopeo copy + zstd|tar (zstd)" \
    "nsenter --net=/run/netns/$ns sh -c 'skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/bench/img:zstd oci:$work/peer && $work/zstd-unpack.sh $work/peer $work/peer-bundle'"
python3 - "bench/results/images-$date.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for c, peer in (("gzip", "skopeo copy + umoci unpack (gzip)"), ("zstd", "skopeo copy + zstd|tar (zstd)")):
    h = r[f"hoist pull ({c})"]["median"]
    p = r[peer]["median"]
    print(f"{c}: hoist {h*1000:.0f} ms, {peer} {p*1000:.0f} ms, ratio {p/h:.2f}x")
PY
