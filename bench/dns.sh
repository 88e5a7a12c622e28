#!/usr/bin/env bash
# The cluster DNS, side by side in one run: Hoist's embedded server (its real code, through the
# `dns_table` example: N services with 2 ready replicas each, as the endpoints watch fills it) and
# dnsmasq answering the same names from a hosts file, both on loopback, both queried by dnsperf
# with the same query file (SERVICE, tasks.SERVICE and SLOT.SERVICE names, A records).
# Writes bench/results/dns-<date>.{md,json}. Run as root. Not part of the test suite.
#
#   SECS=10 SERVICES=1000 bench/dns.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
N=${SERVICES:-1000}
command -v dnsperf >/dev/null || apt-get install -y -qq dnsperf >/dev/null
command -v dnsmasq >/dev/null || apt-get install -y -qq dnsmasq-base >/dev/null
cargo build --release -p hoist-agent --example dns_table -q
work=$(mktemp -d /tmp/hoist-dns-bench.XXXXXX)
cleanup() { set +e; [ -n "${hp:-}" ] && kill "$hp"; [ -n "${dp:-}" ] && kill "$dp"; rm -rf "$work"; }
trap cleanup EXIT

# The same names for both: svcI -> two addresses; tasks.svcI; 0.svcI / 1.svcI.
python3 - "$N" "$work" <<'PY'
import sys
n, work = int(sys.argv[1]), sys.argv[2]
with open(f"{work}/hosts", "w") as h, open(f"{work}/queries", "w") as q:
    for i in range(n):
        a0, a1 = f"10.200.0.{2 + i % 250}", f"10.200.1.{2 + i % 250}"
        h.write(f"{a0} svc{i} tasks.svc{i} 0.svc{i}\n{a1} svc{i} tasks.svc{i} 1.svc{i}\n")
    for i in range(n):
        q.write(f"svc{i} A\ntasks.svc{i} A\n{i % 2}.svc{i} A\n")
PY
target/x86_64-unknown-linux-gnu/release/examples/dns_table 127.0.0.1:5353 "$N" > "$work/hoist.out" &
hp=$!
dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$work/hosts" --listen-address=127.0.0.1 \
  --port=5354 --bind-interfaces --cache-size=10000 --local-ttl=5 --pid-file="$work/dnsmasq.pid" &
dp=$!
for _ in $(seq 100); do grep -q ready "$work/hoist.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.5

# run NAME PORT [QPS]: dnsperf for SECS (as fast as it goes, or at QPS), then latency percentiles
# from its per-query verbose lines.
run() {
  local name=$1 port=$2 rate=${3:-}
  local limit=()
  [ -n "$rate" ] && limit=(-Q "$rate")
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$SECS" -c 4 -q 200 "${limit[@]}" -v > "$work/$port.out" 2>&1 || true
  python3 - "$name${rate:+ at $rate/s}" "$work/$port.out" <<'PY'
import json, re, sys
name, path = sys.argv[1], sys.argv[2]
text = open(path).read()
qps = float(re.search(r"Queries per second:\s+([\d.]+)", text).group(1))
lost = re.search(r"Queries lost:\s+(\d+)", text).group(1)
lat = sorted(float(m) for m in re.findall(r"^> \S+ .* ([\d.]+)$", text, re.M))
p = lambda x: round(1000 * lat[min(len(lat) - 1, int(x * len(lat)))], 3) if lat else None
print(json.dumps({"server": name, "qps": round(qps), "lost": int(lost), "p50_ms": p(0.50), "p99_ms": p(0.99), "samples": len(lat)}))
PY
}
results=$work/results.jsonl
dm="dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}')"
run "Hoist cluster DNS" 5353 | tee -a "$results"
run "$dm" 5354 | tee -a "$results"
# Latency at the target rate (50,000 queries/s), not at saturation.
run "Hoist cluster DNS" 5353 50000 | tee -a "$results"
run "$dm" 5354 50000 | tee -a "$results"

out=bench/results/dns-$(date -u +%F)
python3 - "$results" "$out" "$SECS" "$N" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2] + ".json", "w"), indent=1)
with open(sys.argv[2] + ".md", "w") as f:
    f.write(f"# Cluster DNS ({sys.argv[4]} services, dnsperf -c 4 -q 200, {sys.argv[3]} s, `bench/dns.sh`)\n\n")
    f.write("| server | queries/s | p50 (ms) | p99 (ms) | lost |\n| --- | ---: | ---: | ---: | ---: |\n")
    for r in rows:
        f.write(f"| {r['server']} | {r['qps']} | {r['p50_ms']} | {r['p99_ms']} | {r['lost']} |\n")
    f.write(f"\nAt saturation (200 queries outstanding per client) Hoist / dnsmasq: {rows[0]['qps']/rows[1]['qps']:.2f}x queries/s; "
            f"the last two rows hold the rate at 50,000/s to measure latency, not queueing.\n")
print(open(sys.argv[2] + ".md").read())
PY
