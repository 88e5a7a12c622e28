#!/usr/bin/env bash
# Where the controller's memory per task goes: a 3-member cluster on loopback whose first member
# runs under heaptrack, filled by hoist-sim with NODES nodes and TASKS replicas. COST=leaked
# (default): the member is then killed, so that heaptrack's "leaked" is what it held after the
# fill; COST=peak: stopped with SIGTERM, the heap at its peak. Prints the members' RSS before and
# after the fill and the heap by Hoist's allocation sites.
# The controller is built with glibc's allocator (feature `system-allocator`, dynamically linked)
# in its own target dir, since heaptrack hooks malloc. ROLE=leader (default) starts the other two
# members with election timeouts of a minute, so that the profiled member, slowed by heaptrack,
# keeps leading; ROLE=any leaves them at the defaults (the profiled member then often ends a
# follower). HOLD=1 (with COST=leaked) kills the member while the simulated nodes are still
# connected, 10 s after the fill: "leaked" then includes what their connections hold. Not part of
# the test suite.
#
#   bench/heap-profile.sh         NODES=1000 TASKS=10000 COST=leaked ROLE=leader HOLD=0 OUT=/tmp/hoist-heap-profile
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
NODES=${NODES:-1000}
TASKS=${TASKS:-10000}
OUT=${OUT:-/tmp/hoist-heap-profile}
COST=${COST:-leaked}
case $COST in leaked | peak) ;; *) echo "COST=$COST: leaked or peak" >&2; exit 2 ;; esac
ROLE=${ROLE:-leader}
case $ROLE in leader | any) ;; *) echo "ROLE=$ROLE: leader or any" >&2; exit 2 ;; esac
HOLD=${HOLD:-0}
case $HOLD in 0) ;; 1) [ "$COST" = leaked ] || { echo "HOLD=1 needs COST=leaked" >&2; exit 2; } ;; *) echo "HOLD=$HOLD: 0 or 1" >&2; exit 2 ;; esac
command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack >/dev/null; }
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR=${HEAP_TARGET_DIR:-$root/target/heap-profile}
RUSTFLAGS="-C target-feature=-crt-static" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  CARGO_PROFILE_RELEASE_STRIP=none cargo build --release -q -p hoist-controller --features system-allocator
CARGO_TARGET_DIR=$root/target cargo build --release -q -p hoist-sim
ctl=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/hoist-controller
sim=$root/target/x86_64-unknown-linux-gnu/release/hoist-sim

rm -rf "$OUT" && mkdir -p "$OUT"
flags=(--node-grace 5s --heartbeat-interval 1s --cluster-cidr 100.64.0.0/10)
pids=()
member_pid() { pgrep -f -- "--data-dir $OUT/c$1 " | while read -r p; do [ "$(readlink /proc/"$p"/exe)" = "$ctl" ] && echo "$p"; done; }
cleanup() { # heaptrack runs the member as its child: both go
  for i in 1 2 3; do kill -9 $(member_pid "$i") 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
export HOIST_LOG=warn,openraft=error
start_member() { # i [flags...]
  local i=$1; shift
  local run=("$ctl")
  [ "$i" = 1 ] && run=(heaptrack -o "$OUT/member1" "$ctl")
  "${run[@]}" --data-dir "$OUT/c$i" --listen "127.0.0.1:2800$i" --id "$i" "${flags[@]}" "$@" \
    >"$OUT/c$i.log" 2>&1 &
  pids+=($!)
}
# Member 1 bootstraps, so it leads first; with ROLE=any, heaptrack's slowdown may cost it the
# leadership (the script says whether it still leads: a follower's heap is then what is profiled).
start_member 1 --bootstrap
for _ in $(seq 300); do [ -s "$OUT/c1/admin.token" ] && break; sleep 0.1; done
HOIST_TOKEN=$(cat "$OUT/c1/admin.token")
export HOIST_TOKEN
patient=()
[ "$ROLE" = leader ] && patient=(--election-min-ms 60000 --election-max-ms 61000)
start_member 2 --join 127.0.0.1:28001 "${patient[@]}"
start_member 3 --join 127.0.0.1:28001 "${patient[@]}"
status() { curl -sf -H "Authorization: Bearer $HOIST_TOKEN" http://127.0.0.1:28001/v1/cluster/status; }
for _ in $(seq 300); do
  status | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["leader"] and sum(m["voter"] for m in d["members"])==3 else 1)' 2>/dev/null && break
  sleep 0.2
done
rss() { for i in 1 2 3; do printf 'c%s %s ' "$i" "$(awk '/VmRSS/ {print $2 " kB"}' /proc/"$(member_pid "$i")"/status)"; done; echo; }
echo "before (member 1's RSS includes heaptrack's own): $(rss)" | tee "$OUT/rss"
# The most connections member 1 served at once during the fill (each costs buffers per
# connection, whatever the tasks).
( most=0; while sleep 1; do
    n=$(ss -Htn state established '( sport = :28001 )' | wc -l)
    [ "$n" -gt "$most" ] && most=$n && echo "$most" >"$OUT/connections"
  done ) &
sampler=$!
pids+=("$sampler") # stopped by the cleanup too, should the fill fail
sim_args=(--nodes "$NODES" --tasks "$TASKS" --json --timeout 5m --kill-nodes 0
  --controller 127.0.0.1:28001,127.0.0.1:28002,127.0.0.1:28003)
if [ "$HOLD" = 1 ]; then
  # The nodes stay connected through the idle phase; the member is looked at 10 s into it.
  "$sim" "${sim_args[@]}" --idle-secs 60 >"$OUT/sim.json" 2>"$OUT/sim.log" &
  sim_pid=$!
  pids+=("$sim_pid")
  until grep -q "all running; idle" "$OUT/sim.log"; do
    kill -0 "$sim_pid" 2>/dev/null || { echo "hoist-sim ended before the fill did:" >&2; cat "$OUT/sim.log" >&2; exit 1; }
    sleep 0.5
  done
  sleep 10
else
  "$sim" "${sim_args[@]}" >"$OUT/sim.json"
fi
kill "$sampler" 2>/dev/null || true
echo "connections to member 1 during the fill, at most: $(cat "$OUT/connections" 2>/dev/null || echo 0)" | tee -a "$OUT/rss"
echo "after the fill of $TASKS tasks on $NODES nodes: $(rss)" | tee -a "$OUT/rss"
leader=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
echo "profiled: member 1 (the leader is member $leader)"
if [ "$COST" = leaked ]; then
  # Killed, it frees nothing: what heaptrack counts as leaked is what it held after the fill.
  kill -KILL "$(member_pid 1)"
else
  kill -TERM "$(member_pid 1)"
fi
for _ in $(seq 600); do grep -q "Heaptrack finished" "$OUT/c1.log" && break; sleep 0.1; done
# The stacks, flamegraph style ("frame;frame;... bytes"), then summed by the innermost frame of
# Hoist's own.
heaptrack_print -f "$OUT/member1.zst" --print-peaks 0 --print-leaks 0 --print-allocators 0 \
  --print-temporary 0 -F "$OUT/$COST.stacks" --flamegraph-cost-type "$COST" >"$OUT/summary.txt"
grep -E "^(total|peak|calls)" "$OUT/summary.txt" || true
git ls-files '*.rs' | xargs -n1 basename | sort -u >"$OUT/ours.txt"
find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -name '*.rs' -printf '%f\n' | sort -u >"$OUT/theirs.txt"
python3 - "$OUT/$COST.stacks" "$OUT/ours.txt" "$OUT/theirs.txt" "$COST" <<'PY'
import collections, re, sys
# Frames name only a file: count those whose name no dependency's source file has.
ours = set(open(sys.argv[2]).read().split()) - set(open(sys.argv[3]).read().split())
by_site, total = collections.Counter(), 0
for line in open(sys.argv[1]):
    stack, cost = line.rstrip().rsplit(" ", 1)
    total += int(cost)
    site = "outside Hoist's files (buffers of hyper, rustls, tokio)"
    for frame in stack.split(";"):
        m = re.search(r"\((\w+\.rs)\)", frame)
        path = re.search(r"hoist_\w+(::\w+)+", frame)
        if path:  # a generic frame names its Hoist type parameters: the nearest function of ours
            site = path.group(0)
        elif m and m.group(1) in ours:
            name = re.sub(r"<.*| \(.*", "", frame)[:50]
            site = f"{m.group(1)} {name}"
    by_site[site] += int(cost)
what = "live after the fill" if sys.argv[4] == "leaked" else "at the peak"
print(f"heap {what}: {total / 2**20:.1f} MiB, by the innermost frame of Hoist's:")
for site, cost in by_site.most_common(15):
    print(f"{cost / 2**20:9.2f} MiB  {site}")
PY
echo "heaptrack data: $OUT/member1.zst (heaptrack --analyze for the GUI); stacks: $OUT/$COST.stacks"
