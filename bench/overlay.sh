#!/usr/bin/env bash
# The overlay's data plane, side by side in one run between two network namespaces ("hosts") on one
# bridge: plain veth (the floor), Hoist's embedded userspace WireGuard (`hoist-agent __wg`, gotatun),
# and Debian's wireguard-go, both tunnels configured the same way with `wg` over their UAPI sockets
# (same keys, MTU 1420 = 1500 - 80, one peer each). iperf3 TCP throughput with 1 and 4 streams,
# and ping round trips. Device to device: the container's bridge and veth hop is the same for all
# three and is measured by the veth row. Writes bench/results/overlay-<date>.{md,json}.
# Run as root. Not part of the test suite.
#
#   SECS=10 bench/overlay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
SECS=${SECS:-10}
for t in iperf3 wireguard-go wg ping; do
  command -v "$t" >/dev/null || apt-get install -y -qq iperf3 wireguard-go wireguard-tools iputils-ping >/dev/null
done
[ -n "${HOIST_BIN_DIR:-}" ] || cargo build --release -p hoist-agent -q
bin=${HOIST_BIN_DIR:-$PWD/target/x86_64-unknown-linux-gnu/release}
id=$(printf '%05x' $((RANDOM * RANDOM % 1048576)))
A=hob-a$id B=hob-b$id BR=hob$id
work=$(mktemp -d /tmp/hoist-overlay-bench.XXXXXX)
cleanup() {
  set +e
  for i in hba$id hbb$id; do rm -f "/var/run/wireguard/$i.sock"; pkill -9 -f "(__wg|wireguard-go) $i\$"; done
  ip netns pids "$A" 2>/dev/null | xargs -r kill -9; ip netns pids "$B" 2>/dev/null | xargs -r kill -9
  ip netns del "$A"; ip netns del "$B"; ip link del "$BR"
  rm -rf "$work"
}
trap cleanup EXIT

# The underlay: two namespaces on a private bridge, 10.251.0.1 and .2 (no route anywhere else).
ip link add "$BR" type bridge && ip link set "$BR" up
for n in a b; do
  ns=hob-$n$id ip=10.251.0.$([ $n = a ] && echo 1 || echo 2)
  ip netns add "$ns"
  ip link add "hob$n$id" type veth peer name eth0 netns "$ns"
  ip link set "hob$n$id" master "$BR" up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up
done
wg genkey > "$work/a.key"; wg genkey > "$work/b.key"
pa=$(wg pubkey < "$work/a.key"); pb=$(wg pubkey < "$work/b.key")

# tunnel KIND: brings up hba$id in A and hbb$id in B with KIND (hoist|wireguard-go), 10.252.0.1/.2.
tunnel() {
  local kind=$1
  for n in a b; do
    local ns=hob-$n$id dev=hb$n$id
    if [ "$kind" = hoist ]; then
      ip netns exec "$ns" "$bin/hoist-agent" __wg "$dev" > "$work/$dev.ready" 2>/dev/null &
      disown
      for _ in $(seq 100); do grep -q ready "$work/$dev.ready" 2>/dev/null && break; sleep 0.05; done
    else
      ip netns exec "$ns" wireguard-go "$dev" >/dev/null 2>&1
    fi
  done
  ip netns exec "$A" wg set hba$id private-key "$work/a.key" listen-port 51820 peer "$pb" endpoint 10.251.0.2:51820 allowed-ips 10.252.0.2/32
  ip netns exec "$B" wg set hbb$id private-key "$work/b.key" listen-port 51820 peer "$pa" endpoint 10.251.0.1:51820 allowed-ips 10.252.0.1/32
  ip -n "$A" addr add 10.252.0.1/24 dev hba$id && ip -n "$A" link set hba$id mtu 1420 up
  ip -n "$B" addr add 10.252.0.2/24 dev hbb$id && ip -n "$B" link set hbb$id mtu 1420 up
}
untunnel() {
  for i in hba$id hbb$id; do rm -f "/var/run/wireguard/$i.sock"; pkill -9 -f "(__wg|wireguard-go) $i\$"; done
  sleep 0.5
}

# measure NAME ADDR: iperf3 1 and 4 streams, ping RTT; one JSON line per measure.
measure() {
  local name=$1 addr=$2
  ip netns exec "$B" iperf3 -s -D -1 -p 5201 >/dev/null; sleep 0.3
  local one four
  one=$(ip netns exec "$A" iperf3 -c "$addr" -p 5201 -t "$SECS" -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])')
  ip netns exec "$B" iperf3 -s -D -1 -p 5201 >/dev/null; sleep 0.3
  four=$(ip netns exec "$A" iperf3 -c "$addr" -p 5201 -t "$SECS" -P 4 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])')
  local rtt
  rtt=$(ip netns exec "$A" ping -c 300 -i 0.01 -q "$addr" | awk -F'[/ =]+' '/rtt/ {print $6" "$7" "$8}')
  echo "{\"path\":\"$name\",\"gbps_1\":$(python3 -c "print(round($one/1e9,3))"),\"gbps_4\":$(python3 -c "print(round($four/1e9,3))"),\"rtt_min_avg_max_ms\":\"$rtt\"}"
}

results=$work/results.jsonl
measure "veth (no tunnel)" 10.251.0.2 | tee -a "$results"
tunnel hoist; measure "Hoist overlay (hoist-agent __wg, gotatun)" 10.252.0.2 | tee -a "$results"; untunnel
tunnel wireguard-go; measure "wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null)" 10.252.0.2 | tee -a "$results"; untunnel

date=$(date -u +%F)
out=bench/results/overlay-$date
python3 - "$results" "$out" "$SECS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
veth, hoist, wgo = rows
def avg(r): return float(r["rtt_min_avg_max_ms"].split()[1])
with open(sys.argv[2] + ".json", "w") as f:
    json.dump(rows, f, indent=1)
with open(sys.argv[2] + ".md", "w") as f:
    f.write(f"# Overlay data plane ({sys.argv[3]} s per iperf3 run, `bench/overlay.sh`)\n\n")
    f.write("| path | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | ping RTT min/avg/max (ms) |\n| --- | ---: | ---: | --- |\n")
    for r in rows:
        f.write(f"| {r['path']} | {r['gbps_1']} | {r['gbps_4']} | {r['rtt_min_avg_max_ms']} |\n")
    f.write(f"\nHoist / wireguard-go: {hoist['gbps_1']/wgo['gbps_1']:.2f}x (1 stream), {hoist['gbps_4']/wgo['gbps_4']:.2f}x (4 streams); "
            f"added RTT over veth: Hoist {1000*(avg(hoist)-avg(veth)):.0f} us, wireguard-go {1000*(avg(wgo)-avg(veth)):.0f} us.\n")
print(open(sys.argv[2] + ".md").read())
PY
