#!/usr/bin/env bash
# CPU per write: a 3-member Hoist controller cluster on loopback under bench/controller's 64-client
# load (POST /v1/services/kN/scale, clients spread over the members), RUNS runs of SECS seconds.
# Prints each run's writes/s and each process's CPU (user + system) per write: the members' and
# the load generator's. Member 1 bootstraps, so it leads unless an election moved it (its log
# says). PERF=N also records member N's profile (perf, DWARF call graphs) during
# the last run into OUT (default /tmp/hoist-cpu.perf.data). HOIST_CONTROLLER_BIN=PATH runs
# another build (an A/B: alternate the two). Not part of the test suite.
#
#   bench/controller/cpu.sh      SECS=10 RUNS=2 CLIENTS=64 PERF= OUT=/tmp/hoist-cpu.perf.data
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. bench/lib/members.sh # and auth.sh, wait.sh
SECS=${SECS:-10}
RUNS=${RUNS:-2}
CLIENTS=${CLIENTS:-64}
PERF=${PERF:-}
OUT=${OUT:-/tmp/hoist-cpu.perf.data}
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR=$root/target
bin=$root/target/x86_64-unknown-linux-gnu/release
[ -n "${HOIST_CONTROLLER_BIN:-}" ] || cargo build --release -q -p hoist-controller
cargo build --release -q --manifest-path bench/controller/Cargo.toml
CTL=${HOIST_CONTROLLER_BIN:-$bin/hoist-controller}
load=$bin/hoist-bench-load
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
[ -z "$PERF" ] || command -v perf >/dev/null || { echo "PERF=$PERF needs perf (linux-perf)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/hoist-cpu.XXXXXX)
work=$WORK
eps=127.0.0.1:27001,127.0.0.1:27002,127.0.0.1:27003
cleanup() {
  set +e
  for p in "${HOIST_PID[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${HOIST_PID[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
hoist_start_members
wait_until "3 voters" 60 hoist_three_voters
"$load" setup hoist "$eps" "$CLIENTS" >/dev/null
"$load" load hoist "$eps" "$CLIENTS" 3 >/dev/null # warm up
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
for run in $(seq "$RUNS"); do
  declare -A before=()
  for i in 1 2 3; do before[$i]=$(ticks "${HOIST_PID[$i]}"); done
  perf_pid=
  if [ -n "$PERF" ] && [ "$run" = "$RUNS" ]; then
    perf record -q -F 999 --call-graph dwarf,16384 -o "$OUT" -p "${HOIST_PID[$PERF]}" -- sleep "$SECS" 2>/dev/null &
    perf_pid=$!
  fi
  /usr/bin/time -f '%U %S' -o "$work/time" "$load" load hoist "$eps" "$CLIENTS" "$SECS" >"$work/out"
  [ -z "$perf_pid" ] || wait "$perf_pid"
  line="run $run: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f writes/s, %d errors," % (d["ops_per_sec"], d["errors"]))' "$work/out")"
  ops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops"])' "$work/out")
  for i in 1 2 3; do
    line+=$(awk -v a="${before[$i]}" -v b="$(ticks "${HOIST_PID[$i]}")" -v hz="$hz" -v n="$ops" -v i="$i" \
      'BEGIN { printf " member %d %.1f", i, (b - a) / hz * 1e6 / n }')
  done
  line+=$(awk -v n="$ops" '{ printf " load %.1f", ($1 + $2) * 1e6 / n }' "$work/time")
  echo "$line µs of CPU per write"
done
[ -z "$PERF" ] || echo "member $PERF's profile: $OUT (perf report -i $OUT)"
