#!/usr/bin/env bash
# Captures the agent's records as Hoist 0.1.0 writes them (JSON files in its data dir), by running
# 0.1.0's own binaries in a scratch network namespace: one controller, one agent joined to it, one
# container with a published port, stopped. Writes proto/golden/v0/agent-*.json; refuses to
# overwrite (golden files are add-only). Run as root from the repository root, after building
# 0.1.0 (deploy/build-release.sh 0.1.0).
set -euo pipefail
bin=${OLD_BIN:-target/releases/0.1.0/target/x86_64-unknown-linux-gnu/debug}
out=proto/golden/v0
for f in container-record network-state image-index node-identity started exit; do
  [ ! -e "$out/agent-$f.json" ] || { echo "$out/agent-$f.json exists: golden files are add-only" >&2; exit 1; }
done
ns=hoist-golden-$$
work=$(mktemp -d)
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null || true
  sleep 1
  pkill -f "$work/data" 2>/dev/null || true
  umount -l "$work/data/run" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rmdir /sys/fs/cgroup/*/hoist-golden* 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { nsenter --net=/run/netns/"$ns" "$@"; }
nsenter --net=/run/netns/"$ns" "$bin/hoist-controller" --data-dir "$work/ctl" --listen 127.0.0.1:17070 --id 1 --bootstrap 2>"$work/ctl.log" &
ctl=$!
for _ in $(seq 50); do in_ns "$bin/hoist" --controller 127.0.0.1:17070 cluster token >/dev/null 2>&1 && break; sleep 0.2; done
token=$(in_ns "$bin/hoist" --controller 127.0.0.1:17070 cluster token)
nsenter --net=/run/netns/"$ns" "$bin/hoist-agent" --data-dir "$work/data" --socket "$work/agent.sock" --cgroup-parent hoist-golden \
  --subnet 10.97.0.0/24 --join "$token" --controller 127.0.0.1:17070 --advertise-addr 127.0.0.1 2>"$work/agent.log" &
agent=$!
for _ in $(seq 50); do [ -S "$work/agent.sock" ] && [ -s "$work/data/node.json" ] && break; sleep 0.2; done
h() { in_ns "$bin/hoist" --agent "$work/agent.sock" "$@"; }
deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
h image import "$work/busybox.tar" busybox >/dev/null
id=$(h run -d --name web -p 18080:80 -e A=1 -l team=blue --memory 64m busybox sleep 1000)
sleep 1
cp "$work/data/containers/$id/container.json" "$out/agent-container-record.json"
cp "$work/data/network/attachments.json" "$out/agent-network-state.json"
cp "$work/data/images/index.json" "$out/agent-image-index.json"
cp "$work/data/node.json" "$out/agent-node-identity.json"
cp "$work/data/run/$id/started.json" "$out/agent-started.json"
h stop -t 1 web >/dev/null
cp "$work/data/containers/$id/exit.json" "$out/agent-exit.json"
h rm web >/dev/null
ls -l "$out"/agent-*.json
