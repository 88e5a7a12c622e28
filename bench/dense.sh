#!/usr/bin/env bash
# Dense hosts (issue 18): N long-running containers (busybox `sleep 1d`, no network) on one agent,
# side by side in one run with conmon + runc (Debian's conmon, as podman drives it) and, when
# PEER_CONTAINERD=1 (the default), containerd + containerd-shim-runc-v2 (`ctr run -d`):
#   - memory per container: the supervisors' PSS and RSS (/proc/PID/smaps_rollup) plus the
#     daemon's RSS growth, divided by N; the containers' own pid 1 (`sleep`) is not counted;
#   - start rate: N starts issued PAR at a time (default 8) through xargs -P;
#   - `hoist ps -q` and `hoist ps -o json` latency with N running (hyperfine);
#   - agent restart with N running (SIGTERM, then SIGKILL): time from the start of the new agent
#     until `hoist ps` lists all N as running, and the agent's own restore time from its log;
#     containerd likewise, until `ctr task ls` lists all N running;
#   - a bridge variant (BRIDGE_N containers, default 200: the standalone agent's /24) for memory.
# Writes bench/results/dense-<date>.{md,json}. Run as root. Not part of the test suite.
#
#   bench/dense.sh [N]     (default 1000)
#   HOIST_BIN_DIR=DIR      use these hoist/hoist-agent binaries instead of a release build
#   AGENT_ARGS="--supervisor-start exec"   more arguments for the agent
#   PAR=8 BRIDGE_N=200 PEER_CONMON=1 PEER_CONTAINERD=1 PS_RUNS=30 SUFFIX= (results/dense-<date>-SUFFIX.*)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
par=${PAR:-8}
bridge_n=${BRIDGE_N:-200}
ps_runs=${PS_RUNS:-30}
peer_conmon=${PEER_CONMON:-1}
peer_containerd=${PEER_CONTAINERD:-1}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
# Another engineer's test suite or simulator would skew every number: wait until they are gone.
while pgrep -f deploy/test.sh >/dev/null || pgrep -f hoist-sim >/dev/null; do
  echo "dense: waiting for deploy/test.sh / hoist-sim to finish" >&2
  sleep 30
done
deploy/install-deps.sh
pkgs=()
for p in hyperfine runc conmon; do command -v "$p" >/dev/null || pkgs+=("$p"); done
[ "$peer_containerd" = 1 ] && ! command -v containerd >/dev/null && pkgs+=(containerd)
[ ${#pkgs[@]} -eq 0 ] || apt-get install -y -qq "${pkgs[@]}" >/dev/null

if [ -z "${HOIST_BIN_DIR:-}" ]; then cargo build --release --workspace --bins -q; fi
bin=${HOIST_BIN_DIR:-$PWD/target/x86_64-unknown-linux-gnu/release}
procmem=$PWD/bench/lib/procmem.py
id=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
ns=hoist-dense-$id
work=$(mktemp -d /tmp/hoist-dense.XXXXXX)
sock=$work/agent.sock
peer=$work/peer
ctrd=$work/ctrd
runc_root=$peer/runc
pid_max_was=$(cat /proc/sys/kernel/pid_max)
inotify_was=$(cat /proc/sys/fs/inotify/max_user_instances)
cleanup() {
  set +e
  echo "dense: cleaning up" >&2
  if [ -S "$sock" ] && [ -n "${agent_pid:-}" ] && kill -0 "$agent_pid" 2>/dev/null; then
    HOIST_AGENT=$sock "$bin/hoist" ps -aq 2>/dev/null | xargs -r -n 50 -P 2 env HOIST_AGENT="$sock" "$bin/hoist" rm -f >/dev/null 2>&1
  fi
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null
  sleep 0.2
  pkill -9 -f "__shim $work" 2>/dev/null
  # conmon + runc
  if [ -d "$runc_root" ]; then
    runc --root "$runc_root" list -q 2>/dev/null | xargs -r -n 1 -P 4 runc --root "$runc_root" delete -f >/dev/null 2>&1
  fi
  pkill -9 -f "conmon --api-version 1 -c dense-$id-" 2>/dev/null
  # containerd
  if [ -n "${ctrd_pid:-}" ] && kill -0 "$ctrd_pid" 2>/dev/null; then
    ctr -a "$ctrd/c.sock" -n "hd$id" task ls -q 2>/dev/null | xargs -r -n 1 -P 4 ctr -a "$ctrd/c.sock" -n "hd$id" task kill -s KILL >/dev/null 2>&1
    sleep 0.5
    ctr -a "$ctrd/c.sock" -n "hd$id" task ls -q 2>/dev/null | xargs -r -n 1 -P 4 ctr -a "$ctrd/c.sock" -n "hd$id" task delete -f >/dev/null 2>&1
    ctr -a "$ctrd/c.sock" -n "hd$id" container ls -q 2>/dev/null | xargs -r -n 50 ctr -a "$ctrd/c.sock" -n "hd$id" container delete >/dev/null 2>&1
    kill "$ctrd_pid" 2>/dev/null
    sleep 0.5
  fi
  pkill -9 -f "containerd-shim-runc-v2 -namespace hd$id " 2>/dev/null
  [ -n "${ctrd_pid:-}" ] && kill -9 "$ctrd_pid" 2>/dev/null
  sleep 0.3
  for d in /sys/fs/cgroup/*/hoist-dense-$id /sys/fs/cgroup/hoist-dense-$id \
           /sys/fs/cgroup/*/dense-$id-runc /sys/fs/cgroup/*/hd$id; do
    [ -d "$d" ] || continue
    find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
    rmdir "$d" 2>/dev/null
  done
  for f in "$work"/data/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  # Mounts left under the work dir (the agent's tmpfs, containerd's), deepest first.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  mkdir -p target/bench-logs
  cp "$work/agent.log" target/bench-logs/dense-agent.log 2>/dev/null
  cp "$ctrd/log" target/bench-logs/dense-containerd.log 2>/dev/null
  rm -rf "$work" "/run/containerd/runc/hd$id"
  # ctr and the shims make these by default; removed only when empty (another containerd's stay).
  rmdir /run/containerd/fifo /run/containerd/s /run/containerd/runc /run/containerd 2>/dev/null
  echo "$pid_max_was" > /proc/sys/kernel/pid_max
  echo "$inotify_was" > /proc/sys/fs/inotify/max_user_instances
}
trap cleanup EXIT

# Limits for N containers: open files (the agent keeps a connection per running container to its
# supervisor), pids (containerd's shims are Go programs of ~10 threads each), inotify instances.
raised=()
if [ "$(ulimit -n)" -lt $((n * 4 + 1024)) ]; then
  was=$(ulimit -n)
  if ulimit -Hn $((n * 4 + 1024)) 2>/dev/null && ulimit -n $((n * 4 + 1024)); then
    raised+=("ulimit -n $was -> $((n * 4 + 1024))")
  else
    echo "dense: cannot raise ulimit -n above $was; the agent may run out of files" >&2
  fi
fi
want_pids=$((n * 16 + 10000))
if [ "$pid_max_was" -lt "$want_pids" ]; then
  echo 4194304 > /proc/sys/kernel/pid_max && raised+=("kernel.pid_max $pid_max_was -> 4194304 (restored on exit)")
fi
if [ "$inotify_was" -lt 8192 ]; then
  echo 8192 > /proc/sys/fs/inotify/max_user_instances && raised+=("fs.inotify.max_user_instances $inotify_was -> 8192 (restored on exit)")
fi
printf 'dense: raised: %s\n' "${raised[@]:-nothing}" >&2

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
mem() { python3 "$procmem" "$@"; }
agent_mem() { mem pid "$agent_pid"; }
# The agent's supervisor forker (none with --supervisor-start exec): counted with the supervisors,
# since forked supervisors share its pages and PSS splits them between all of them.
forker_pids() { pgrep -P "$agent_pid" -f -- "__shim-forker" || true; }

ip netns add "$ns"
ip -n "$ns" link set lo up
start_agent() {
  nsenter --net=/run/netns/$ns "$bin/hoist-agent" --data-dir "$work/data" --socket "$sock" --cgroup-parent "hoist-dense-$id" ${AGENT_ARGS:-} >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}
start_agent
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
export HOIST_AGENT=$sock
deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
"$bin/hoist" image import "$work/busybox.tar" busybox >/dev/null
# Warm the agent (its runtime's threads and pools) before the baseline.
for _ in $(seq 8); do "$bin/hoist" run --rm --network none busybox true; done
sleep 1
agent_before=$(agent_mem)

# Starts: the same command PAR at a time; prints the seconds it took.
timed_starts() { # COUNT NET
  local t0
  t0=$(now)
  seq "$1" | xargs -P "$par" -I{} "$bin/hoist" run -d --network "$2" busybox sleep 1d >/dev/null
  since "$t0"
}
count_running() { "$bin/hoist" ps -q 2>/dev/null | wc -l; }

echo "dense: starting $n hoist containers ($par at a time)" >&2
hoist_start_s=$(timed_starts "$n" none)
[ "$(count_running)" = "$n" ] || { echo "dense: only $(count_running) of $n running" >&2; exit 1; }
sleep 2
agent_after=$(agent_mem)
hoist_shims=$(mem shim "$work" $(forker_pids))
agent_fds=$(ls "/proc/$agent_pid/fd" | wc -l)
run_tmpfs_kib=$(df -k --output=used "$work/data/run" | tail -1 | tr -d ' ')
echo "dense: hoist ps latency" >&2
hyperfine -N --warmup 3 --runs "$ps_runs" --export-json "$work/ps.json" \
  -n "hoist ps -q" "$bin/hoist ps -q" -n "hoist ps -o json" "$bin/hoist ps -o json" >&2

# Restart with N running. The time counts from starting the new agent (the old one is gone) to
# the first `hoist ps -q` that lists all N; each poll is a real request.
restart() { # SIGNAL: sets restart_s (not in a subshell: the new agent must be this shell's child)
  local sig=$1 t0 k=0
  kill -s "$sig" "$agent_pid"
  wait "$agent_pid" 2>/dev/null || true
  t0=$(now)
  echo "--- restart after SIG$sig at $t0" >>"$work/agent.log"
  start_agent
  until [ -S "$sock" ] && [ "$(count_running)" = "$n" ]; do
    k=$((k + 1))
    [ "$k" -lt 20000 ] || { echo "dense: agent never listed $n after SIG$sig" >&2; exit 1; }
    sleep 0.005
  done
  restart_s=$(since "$t0")
}
shims_before=$(pgrep -f "__shim $work" | sort | md5sum)
echo "dense: agent restart (SIGTERM)" >&2
restart TERM
restart_term_s=$restart_s
echo "dense: agent restart (SIGKILL)" >&2
restart KILL
restart_kill_s=$restart_s
shims_after=$(pgrep -f "__shim $work" | sort | md5sum)
[ "$shims_before" = "$shims_after" ] && survived=true || survived=false
sleep 1
agent_restored=$(agent_mem)
# The agent's own view: from its start to its "hoist-agent ready" line (restore done, socket bound).
restore_log=$(python3 - "$work/agent.log" <<'PY'
import sys, re, datetime, json
blocks = open(sys.argv[1]).read().split("--- restart after ")
out = {}
for b in blocks[1:]:
    head, _, body = b.partition("\n")
    sig, _, t0 = head.partition(" at ")
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in body.splitlines()]
    ready = [l for l in lines if "hoist-agent ready" in l]
    if not ready:
        continue
    t = datetime.datetime.fromisoformat(ready[0].split()[0].replace("Z", "+00:00")).timestamp()
    m = re.search(r"restored=(\d+)", ready[0])
    out[sig.strip()] = {"start_to_ready_ms": (t - float(t0)) * 1000,
                        "restored": int(m.group(1)) if m else None}
print(json.dumps(out))
PY
)

echo "dense: removing the $n hoist containers" >&2
t0=$(now)
"$bin/hoist" ps -aq | xargs -r -n 50 -P 2 "$bin/hoist" rm -f >/dev/null
hoist_rm_s=$(since "$t0")

# Bridge variant: fewer containers (the standalone agent's subnet is a /24).
bridge='{}'
if [ "$bridge_n" -gt 0 ]; then
  echo "dense: starting $bridge_n hoist containers on the bridge" >&2
  sleep 1
  b_before=$(agent_mem)
  b_start_s=$(timed_starts "$bridge_n" bridge)
  sleep 2
  bridge=$(python3 -c 'import json,sys; print(json.dumps({"n": int(sys.argv[1]), "start_s": float(sys.argv[2]), "agent_before": json.loads(sys.argv[3]), "agent_after": json.loads(sys.argv[4]), "shims": json.loads(sys.argv[5])}))' \
    "$bridge_n" "$b_start_s" "$b_before" "$(agent_mem)" "$(mem shim "$work" $(forker_pids))")
  "$bin/hoist" ps -aq | xargs -r -n 50 -P 2 "$bin/hoist" rm -f >/dev/null
fi

# A runc bundle per container on one shared read-only rootfs (runc spec's default), each in its
# own cgroup, command `sleep 1d`.
mkdir -p "$peer/rootfs" "$peer/exits" "$peer/s" "$runc_root"
tar -C "$peer/rootfs" -xf "$work/busybox.tar"
(cd "$peer" && runc spec && python3 - "$peer" "$id" "$n" <<'PY'
import json, os, sys
peer, id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "1d"]
c["root"]["path"] = f"{peer}/rootfs"
for i in range(1, n + 1):
    os.mkdir(f"{peer}/b{i}")
    c["linux"]["cgroupsPath"] = f"/dense-{id}-runc/{i}"
    json.dump(c, open(f"{peer}/b{i}/config.json", "w"))
PY
)
# One container the way podman starts it: conmon (which forks and runs `runc create`), then
# `runc start` once the container's pid file is there.
conmon_one() {
  local i=$1 b=$peer/b$1 cid=dense-$id-$1
  conmon --api-version 1 -c "$cid" -u "$cid" -r /usr/bin/runc -b "$b" -p "$b/pidfile" -n "$cid" \
    --exit-dir "$peer/exits" --socket-dir-path "$peer/s" -l "k8s-file:$b/ctr.log" --log-level warning \
    --runtime-arg "--root=$runc_root" --conmon-pidfile "$b/conmon.pid" >/dev/null 2>&1
  for _ in $(seq 2000); do [ -s "$b/pidfile" ] && break; sleep 0.002; done
  runc --root "$runc_root" start "$cid"
}
export -f conmon_one
export peer id runc_root

conmon='{}'
if [ "$peer_conmon" = 1 ]; then
  echo "dense: starting $n conmon + runc containers ($par at a time)" >&2
  t0=$(now)
  seq "$n" | xargs -P "$par" -I{} bash -c 'conmon_one {}'
  conmon_start_s=$(since "$t0")
  running=$(runc --root "$runc_root" list -f json | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) or [] if c["status"]=="running"))')
  [ "$running" = "$n" ] || { echo "dense: only $running of $n runc containers running" >&2; exit 1; }
  sleep 2
  conmon_mem=$(mem conmon "$peer/exits")
  hyperfine -N --warmup 3 --runs "$ps_runs" --export-json "$work/runc-list.json" \
    -n "runc list -q" "runc --root $runc_root list -q" >&2
  conmon=$(python3 -c 'import json,sys; print(json.dumps({"start_s": float(sys.argv[1]), "mem": json.loads(sys.argv[2])}))' "$conmon_start_s" "$conmon_mem")
  echo "dense: removing the conmon containers" >&2
  runc --root "$runc_root" list -q | xargs -r -n 1 -P 4 runc --root "$runc_root" delete -f >/dev/null 2>&1
fi

containerd='{}'
if [ "$peer_containerd" = 1 ]; then
  mkdir -p "$ctrd"
  cat >"$ctrd/config.toml" <<EOF
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd/c.sock"
[ttrpc]
  address = "$ctrd/c.sock.ttrpc"
EOF
  start_containerd() {
    nsenter --net=/run/netns/$ns containerd --config "$ctrd/config.toml" >>"$ctrd/log" 2>&1 &
    ctrd_pid=$!
  }
  start_containerd
  for _ in $(seq 200); do ctr -a "$ctrd/c.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
  ctr_() { ctr -a "$ctrd/c.sock" -n "hd$id" "$@"; }
  export ctrd
  # Warm-up like the agent's.
  for i in $(seq 4); do ctr_ run --rm --read-only --rootfs "$peer/rootfs" "warm-$id-$i" /bin/true; done
  sleep 1
  ctrd_before=$(mem pid "$ctrd_pid")
  echo "dense: starting $n containerd containers ($par at a time)" >&2
  t0=$(now)
  seq "$n" | xargs -P "$par" -I{} ctr -a "$ctrd/c.sock" -n "hd$id" run -d --read-only --rootfs "$peer/rootfs" "dense-$id-{}" /bin/sleep 1d >/dev/null
  ctrd_start_s=$(since "$t0")
  ctr_running() { ctr_ task ls 2>/dev/null | grep -c " RUNNING" || true; }
  [ "$(ctr_running)" = "$n" ] || { echo "dense: only $(ctr_running) of $n containerd tasks running" >&2; exit 1; }
  sleep 2
  ctrd_after=$(mem pid "$ctrd_pid")
  ctrd_shims=$(mem ctrshim "$ctrd/c.sock")
  hyperfine -N --warmup 3 --runs "$ps_runs" --export-json "$work/ctr-ls.json" \
    -n "ctr task ls" "ctr -a $ctrd/c.sock -n hd$id task ls" >&2
  echo "dense: containerd restart (SIGTERM)" >&2
  kill "$ctrd_pid"; wait "$ctrd_pid" 2>/dev/null || true
  t0=$(now)
  start_containerd
  k=0
  until [ "$(ctr_running)" = "$n" ]; do
    k=$((k + 1)); [ "$k" -lt 20000 ] || { echo "dense: containerd never listed $n" >&2; exit 1; }
    sleep 0.005
  done
  ctrd_restart_s=$(since "$t0")
  containerd=$(python3 -c 'import json,sys; a=sys.argv; print(json.dumps({"start_s": float(a[1]), "daemon_before": json.loads(a[2]), "daemon_after": json.loads(a[3]), "shims": json.loads(a[4]), "restart_s": float(a[5])}))' \
    "$ctrd_start_s" "$ctrd_before" "$ctrd_after" "$ctrd_shims" "$ctrd_restart_s")
  echo "dense: removing the containerd containers" >&2
  ctr_ task ls -q | xargs -r -n 1 -P 4 ctr -a "$ctrd/c.sock" -n "hd$id" task kill -s KILL >/dev/null 2>&1 || true
  sleep 1
  ctr_ task ls -q | xargs -r -n 1 -P 4 ctr -a "$ctrd/c.sock" -n "hd$id" task delete -f >/dev/null 2>&1 || true
  ctr_ container ls -q | xargs -r -n 50 ctr -a "$ctrd/c.sock" -n "hd$id" container delete >/dev/null 2>&1 || true
fi

date=$(date -u +%Y-%m-%d)
out=bench/results/dense-$date${SUFFIX:+-$SUFFIX}
jq_in=$(python3 -c 'import json,sys; a=sys.argv; print(json.dumps({
  "n": int(a[1]), "par": int(a[2]), "hoist": {"start_s": float(a[3]), "agent_before": json.loads(a[4]),
  "agent_after": json.loads(a[5]), "shims": json.loads(a[6]), "restart_term_s": float(a[7]),
  "restart_kill_s": float(a[8]), "survived_restarts": a[9] == "true", "agent_restored": json.loads(a[10]),
  "restore_log": json.loads(a[11]), "rm_s": float(a[12]), "agent_fds": int(a[17]), "run_tmpfs_kib": int(a[18])}, "bridge": json.loads(a[13]),
  "conmon": json.loads(a[14]), "containerd": json.loads(a[15]), "raised": a[16]}))' \
  "$n" "$par" "$hoist_start_s" "$agent_before" "$agent_after" "$hoist_shims" "$restart_term_s" \
  "$restart_kill_s" "$survived" "$agent_restored" "$restore_log" "$hoist_rm_s" "$bridge" "$conmon" \
  "$containerd" "$(IFS=';'; echo "${raised[*]:-}")" "$agent_fds" "$run_tmpfs_kib")
echo "$jq_in" >"$work/raw.json"
python3 bench/lib/dense_report.py "$work/raw.json" "$work" "$out"
