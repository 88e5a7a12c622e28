#!/usr/bin/env bash
# What mutual TLS between members costs: two 3-member Hoist controller clusters on loopback, one as
# shipped (Raft, forwarded writes and forwarded requests over mutual TLS) and one started with
# --unsafe-plain-peers (the same build, members over plain HTTP), driven by the same load generator
# in one run, alternating A B A B: 1 client and 64 clients of small writes in a closed loop
# (POST /v1/services/kN/scale spread over the members, so two thirds are forwarded to the leader).
# The issue's target: at most 10 % less throughput with mutual TLS.
# Writes bench/results/mtls-<date>.{json,md}. Run as root. Not part of the test suite.
#
#   bench/mtls.sh     SECS=10 REPS=3 (env overrides)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. bench/lib/wait.sh
SECS=${SECS:-10}
REPS=${REPS:-3}
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR=$root/target
cargo build --release -q -p hoist-controller
cargo build --release -q --manifest-path bench/controller/Cargo.toml
bin=$root/target/x86_64-unknown-linux-gnu/release
load=$bin/hoist-bench-load
ctl=$bin/hoist-controller
work=$(mktemp -d /tmp/hoist-mtls-bench.XXXXXX)
declare -A pid token
cleanup() {
  set +e
  for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$root/target/bench-logs" && mkdir -p "$root/target/bench-logs" && cp "$work"/*.log "$root/target/bench-logs/"
  rm -rf "$work"
}
trap cleanup EXIT
voters() { # port tok
  curl -sf -H "Authorization: Bearer $2" "http://127.0.0.1:${1}/v1/cluster/status" | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(m["voter"] for m in d["members"])==3 and d["leader"] else 1)'
}
tls_everywhere() { # tok: every member of the TLS cluster serves TLS (a certificate of its own)
  for i in 1 2 3; do
    grep -q "serving TLS with a new member certificate\|this member has its certificate" "$work/tls$i.log" || return 1
  done
}
# cluster NAME BASE_PORT [flags]: 127.0.0.1:BASE+1..3
cluster() {
  local name=$1 base=$2; shift 2
  "$ctl" --data-dir "$work/${name}1" --listen "127.0.0.1:$((base + 1))" --id 1 --bootstrap "$@" 2>>"$work/${name}1.log" &
  pid[${name}1]=$!
  for _ in $(seq 300); do [ -s "$work/${name}1/admin.token" ] && break; sleep 0.1; done
  token[$name]=$(cat "$work/${name}1/admin.token")
  for i in 2 3; do
    HOIST_TOKEN=${token[$name]} "$ctl" --data-dir "$work/$name$i" --listen "127.0.0.1:$((base + i))" --id "$i" \
      --join "127.0.0.1:$((base + 1))" "$@" 2>>"$work/$name$i.log" &
    pid[$name$i]=$!
  done
  wait_until "3 $name voters" 60 voters $((base + 1)) "${token[$name]}"
}
echo "starting two 3-member clusters on loopback (work dir $work)" >&2
cluster tls 27100
cluster plain 27200 --unsafe-plain-peers
wait_until "every member of the TLS cluster serving TLS" 30 tls_everywhere
eps_tls=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103
eps_plain=127.0.0.1:27201,127.0.0.1:27202,127.0.0.1:27203
HOIST_TOKEN=${token[tls]} "$load" setup hoist "$eps_tls" 64
HOIST_TOKEN=${token[plain]} "$load" setup hoist "$eps_plain" 64

runs=$work/runs.jsonl
for rep in $(seq "$REPS"); do
  for variant in tls plain; do
    eps=$eps_tls; [ $variant = plain ] && eps=$eps_plain
    for c in 1 64; do
      out=$(HOIST_TOKEN=${token[$variant]} "$load" load hoist "$eps" $c "$SECS")
      echo "{\"variant\":\"$variant\",\"rep\":$rep,\"result\":$out}" >>"$runs"
      echo "$variant clients=$c rep=$rep $out" >&2
    done
  done
done

mkdir -p bench/results
day=$(date -u +%F)
python3 - "$runs" "bench/results/mtls-$day" "$SECS" <<'PY'
import json, statistics, sys, platform, os
runs = [json.loads(l) for l in open(sys.argv[1])]
out, secs = sys.argv[2], sys.argv[3]
def med(xs): return statistics.median(xs) if xs else float("nan")
load = {}
for r in runs:
    load.setdefault((r["variant"], r["result"]["clients"]), []).append(r["result"])
summary = {"machine": f"{platform.node()} {os.cpu_count()} cpus", "secs_per_run": int(secs), "runs": runs, "summary": {}}
lines = ["| measure | mutual TLS | plain HTTP | TLS / plain |", "| --- | --- | --- | --- |"]
for c in (1, 64):
    for metric, key in (("throughput (writes/s)", "ops_per_sec"), ("p50 (ms)", "p50_ms"), ("p99 (ms)", "p99_ms")):
        t = med([x[key] for x in load.get(("tls", c), [])]); p = med([x[key] for x in load.get(("plain", c), [])])
        summary["summary"][f"{c}_{key}"] = {"tls": t, "plain": p}
        lines.append(f"| {c} client{'s' if c > 1 else ''}: {metric} | {t:.2f} | {p:.2f} | {t / p:.3f} |")
md = "\n".join(lines)
json.dump(summary, open(out + ".json", "w"), indent=1)
open(out + ".md", "w").write(md + "\n")
print(md)
PY
