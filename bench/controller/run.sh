#!/usr/bin/env bash
# Consensus benchmark: a 3-member Hoist controller cluster against a 3-member etcd 3.4 cluster, both on
# loopback, driven by the same HTTP load generator (Hoist: POST /v1/services/kN/scale; etcd: its v3
# JSON gateway, POST /v3/kv/put), in one run, alternating A B A B:
#   - 1 client and 64 clients, small writes in a closed loop: throughput, p50, p99;
#   - time from kill -9 of the leader to the next acknowledged write (repeated);
#   - elections (term increase) during a steady run of STEADY_SECS at STEADY_RATE writes/s, Hoist and
#     etcd side by side (the issue's target: none in 10 minutes).
# Like for like: Hoist's members talk mutual TLS with the certificates of the cluster's CA, so etcd's
# peers do too (a CA and peer certificates made here with openssl, --peer-client-cert-auth), as
# production etcd runs. ETCD_PEER_TLS=0 runs etcd's peers in plain HTTP, as runs before 12-05 did.
# Clients of both talk plain HTTP on loopback.
# Writes bench/results/controller-<date>.{json,md}. Run as root. Not part of the test suite.
#
#   bench/controller/run.sh     SECS=10 REPS=2 FAILOVERS=5 STEADY_SECS=600 STEADY_RATE=100 ETCD_PEER_TLS=1
#                               SUFFIX= (env overrides; SUFFIX names the results file)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. bench/lib/members.sh # and auth.sh, wait.sh
SECS=${SECS:-10}
REPS=${REPS:-2}
FAILOVERS=${FAILOVERS:-5}
STEADY_SECS=${STEADY_SECS:-600}
STEADY_RATE=${STEADY_RATE:-100}
ETCD_PEER_TLS=${ETCD_PEER_TLS:-1}
command -v etcd >/dev/null || { apt-get update -qq && apt-get install -y -qq etcd-server etcd-client >/dev/null; }
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR=$root/target
cargo build --release -q -p hoist-controller
cargo build --release -q --manifest-path bench/controller/Cargo.toml
bin=$root/target/x86_64-unknown-linux-gnu/release
load=$bin/hoist-bench-load
# Another build of the controller (a past release, for a before/after): HOIST_CONTROLLER_BIN=PATH.
CTL=${HOIST_CONTROLLER_BIN:-$bin/hoist-controller}
WORK=$(mktemp -d /tmp/hoist-ctl-bench.XXXXXX)
work=$WORK
declare -A epid
heps=127.0.0.1:27001,127.0.0.1:27002,127.0.0.1:27003
eeps=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793

cleanup() {
  set +e
  for p in "${HOIST_PID[@]}" "${epid[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  # The members' logs outlive the run (elections and RPC timeouts are diagnosed from them).
  rm -rf "$root/target/bench-logs" && mkdir -p "$root/target/bench-logs" && cp "$work"/*.log "$root/target/bench-logs/"
  echo "member logs: $root/target/bench-logs" >&2
  rm -rf "$work"
}
trap cleanup EXIT

peer=http tls=()
etcd_pki() { # a CA and one certificate per etcd member, for 127.0.0.1, usable as server and client
  local d=$work/etcd-pki
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-etcd-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  for i in 1 2 3; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=e$i" \
      -keyout "$d/e$i.key" -out "$d/e$i.csr" 2>/dev/null
    openssl x509 -req -in "$d/e$i.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n') \
      -out "$d/e$i.crt" 2>/dev/null
  done
}
if [ "$ETCD_PEER_TLS" = 1 ]; then
  etcd_pki
  peer=https
fi
start_etcd() { # i
  local i=$1 d=$work/etcd-pki
  [ "$ETCD_PEER_TLS" = 1 ] && tls=(--peer-cert-file "$d/e$i.crt" --peer-key-file "$d/e$i.key"
    --peer-trusted-ca-file "$d/ca.crt" --peer-client-cert-auth)
  etcd --name "e$i" --data-dir "$work/e$i" "${tls[@]}" \
    --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
    --listen-peer-urls "$peer://127.0.0.1:2380$i" --initial-advertise-peer-urls "$peer://127.0.0.1:2380$i" \
    --initial-cluster "e1=$peer://127.0.0.1:23801,e2=$peer://127.0.0.1:23802,e3=$peer://127.0.0.1:23803" \
    --initial-cluster-state new --initial-cluster-token hoist-bench 2>>"$work/e$i.log" &
  epid[$i]=$!
}
all_up() { # sys eps
  local sys=$1 eps=$2
  for ep in ${eps//,/ }; do
    if [ "$sys" = hoist ]; then curl -sf "http://$ep/v1/cluster/status" | grep -q '"leader":[0-9]' || return 1
    else curl -sf -XPOST "http://$ep/v3/maintenance/status" -d '{}' | grep -q '"leader"' || return 1; fi
  done
}

echo "starting 3 Hoist members and 3 etcd members on loopback (work dir $work)" >&2
hoist_start_members   # the admin token they join with is the load generator's too
for i in 1 2 3; do start_etcd $i; done
wait_until "3 hoist voters" 60 hoist_three_voters
wait_until "etcd cluster" 60 all_up etcd "$eeps"
"$load" setup hoist "$heps" 64

runs=$work/runs.jsonl
for rep in $(seq "$REPS"); do
  for sys in hoist etcd; do
    eps=$heps; [ $sys = etcd ] && eps=$eeps
    for c in 1 64; do
      out=$("$load" load $sys "$eps" $c "$SECS")
      echo "{\"system\":\"$sys\",\"rep\":$rep,\"result\":$out}" >>"$runs"
      echo "$sys clients=$c rep=$rep $out" >&2
    done
  done
done

# Both systems at once: a steady low write rate for a long time, elections counted by term.
declare -A before steady_pid
for sys in hoist etcd; do
  eps=$heps; [ $sys = etcd ] && eps=$eeps
  before[$sys]=$("$load" term $sys "$eps")
  "$load" steady $sys "$eps" "$STEADY_RATE" "$STEADY_SECS" >"$work/steady-$sys.json" &
  steady_pid[$sys]=$!
done
for sys in hoist etcd; do
  eps=$heps; [ $sys = etcd ] && eps=$eeps
  wait "${steady_pid[$sys]}"
  after=$("$load" term $sys "$eps")
  out=$(cat "$work/steady-$sys.json")
  echo "{\"system\":\"$sys\",\"steady\":{\"secs\":$STEADY_SECS,\"term_before\":${before[$sys]},\"term_after\":$after,\"load\":$out}}" >>"$runs"
  echo "$sys steady ${STEADY_SECS}s at ${STEADY_RATE}/s: term ${before[$sys]} -> $after $out" >&2
done

for k in $(seq "$FAILOVERS"); do
  for sys in hoist etcd; do
    if [ $sys = hoist ]; then eps=$heps; pids="${HOIST_PID[1]},${HOIST_PID[2]},${HOIST_PID[3]}"; else eps=$eeps; pids="${epid[1]},${epid[2]},${epid[3]}"; fi
    out=$("$load" failover $sys "$eps" "$pids")
    echo "{\"system\":\"$sys\",\"failover\":$out}" >>"$runs"
    echo "$sys failover $k: $out" >&2
    killed=$(( $(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["killed"])') + 1 ))
    if [ $sys = hoist ]; then
      wait "${HOIST_PID[$killed]}" 2>/dev/null || true
      hoist_member $killed
    else
      wait "${epid[$killed]}" 2>/dev/null || true
      start_etcd $killed
    fi
    wait_until "$sys to recover" 60 all_up $sys "$eps"
    sleep 2 # let the restarted member catch up before the next kill (a schedule, not a condition)
  done
done

mkdir -p bench/results
day=$(date -u +%F)
python3 - "$runs" "bench/results/controller-$day${SUFFIX:-}" "$SECS" "$ETCD_PEER_TLS" <<'PY'
import json, statistics, sys, platform, os
runs = [json.loads(l) for l in open(sys.argv[1])]
out, secs = sys.argv[2], sys.argv[3]
etcd_peers = "mutual TLS" if sys.argv[4] == "1" else "plain HTTP"
def med(xs): return statistics.median(xs) if xs else float("nan")
load = {}
for r in runs:
    if "result" in r:
        load.setdefault((r["system"], r["result"]["clients"]), []).append(r["result"])
fail = {s: [r["failover"]["failover_ms"] for r in runs if r.get("system") == s and "failover" in r] for s in ("hoist", "etcd")}
steady = {r["system"]: r["steady"] for r in runs if "steady" in r}
summary = {"machine": f"{platform.node()} {os.cpu_count()} cpus", "secs_per_run": int(secs), "etcd_peers": etcd_peers, "runs": runs, "summary": {}}
rows = []
for c in (1, 64):
    for metric, key, better in (("throughput (writes/s)", "ops_per_sec", "higher"), ("p50 (ms)", "p50_ms", "lower"), ("p99 (ms)", "p99_ms", "lower")):
        h = med([x[key] for x in load.get(("hoist", c), [])]); e = med([x[key] for x in load.get(("etcd", c), [])])
        ratio = (h / e) if better == "higher" else (e / h)
        rows.append((f"{c} client{'s' if c > 1 else ''}: {metric}", h, e, ratio))
        summary["summary"][f"{c}_{key}"] = {"hoist": h, "etcd": e}
h, e = med(fail["hoist"]), med(fail["etcd"])
rows.append((f"failover after leader kill -9, median of {len(fail['hoist'])} (ms)", h, e, e / h))
summary["summary"]["failover_ms"] = {"hoist": fail["hoist"], "etcd": fail["etcd"]}
for s in ("hoist", "etcd"):
    st = steady.get(s)
    if st: summary["summary"][f"{s}_steady_elections"] = st["term_after"] - st["term_before"]
lines = [f"| measure | Hoist (peers: mutual TLS) | etcd 3.4 (peers: {etcd_peers}) | Hoist advantage (×) |", "| --- | --- | --- | --- |"]
for name, h, e, r in rows:
    lines.append(f"| {name} | {h:.2f} | {e:.2f} | {r:.2f} |")
for s in ("hoist", "etcd"):
    st = steady.get(s)
    if st: lines.append(f"| {s}: elections during {st['secs']} s of steady writes ({st['load']['rate']:.0f}/s, max latency {st['load']['max_ms']:.0f} ms, {st['load']['errors']} errors) | {st['term_after'] - st['term_before']} | | |")
md = "\n".join(lines)
json.dump(summary, open(out + ".json", "w"), indent=1)
open(out + ".md", "w").write(md + "\n")
print(md)
PY
