#!/usr/bin/env bash
# The controller at scale before and after a change (issue 18): hoist-sim runs of the same sizes
# against this checkout's build and a base revision's, alternating (base, head, base, head...) so
# that both see the same machine. Writes bench/results/sim-compare-<date>.md. Not part of the test
# suite.
#
#   BASE=<revision> bench/sim-compare.sh    SIZES="2000x20000 2000x60000" RUNS=2 TIMEOUT=4m SUFFIX=
#                                           (SUFFIX names the results sim-compare-<date>-SUFFIX)
#   BASE_BIN_DIR=DIR   hoist-sim and hoist-controller of the base, already built (else BASE is
#                      built in a worktree, in its own target dir: sharing this checkout's would
#                      mix the two builds' artifacts)
#   HOIST_BIN_DIR=DIR  this checkout's, already built (else a release build)
#   BASE_ARGS=, HEAD_ARGS=  more hoist-sim arguments for each side: with BASE_BIN_DIR=HOIST_BIN_DIR,
#                      an A/B of one build (BASE_ARGS=--full-specs: what leaving specs out saves)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-2000x20000 2000x60000}
RUNS=${RUNS:-2}
TIMEOUT=${TIMEOUT:-4m}
work=$(mktemp -d /tmp/hoist-sim-compare.XXXXXX)
cleanup() {
  [ -d "$work/base-src" ] && git worktree remove --force "$work/base-src" || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${BASE_BIN_DIR:-}" ]; then
  base=${BASE:?"BASE=<git revision> or BASE_BIN_DIR=<dir> to compare with"}
  git worktree add -q --detach "$work/base-src" "$base"
  target=${BASE_TARGET:-$PWD/target/sim-compare-base}
  (cd "$work/base-src" && CARGO_TARGET_DIR=$target cargo build --release -q -p hoist-controller -p hoist-sim)
  BASE_BIN_DIR=$(dirname "$(find "$target" -path '*release/hoist-sim' -type f | head -1)")
fi
base_label=${BASE:-$BASE_BIN_DIR}${BASE_ARGS:+ $BASE_ARGS}
. bench/lib/sim.sh
head_label=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo "+changes")${HEAD_ARGS:+ $HEAD_ARGS}

out=bench/results/sim-compare-$(date -u +%F)${SUFFIX:+-$SUFFIX}.md
{
  echo "# hoist-sim before and after: base $base_label, head $head_label ($(date -u +'%F %H:%M') UTC)"
  echo
  echo "\`BASE=$base_label SIZES=\"$SIZES\" RUNS=$RUNS${BASE_ARGS:+ BASE_ARGS=$BASE_ARGS}${HEAD_ARGS:+ HEAD_ARGS=$HEAD_ARGS} bench/sim-compare.sh\`: runs alternate base and head, on $(nproc) cores. CPU: seconds of CPU time from the first apply until all ran."
  echo
  echo "| nodes × tasks | build | join | fill | placements/s | per tenth of the fill | flatness | leader RSS per task | members' RSS once joined | members' connections once joined | \`node ls\` p99 | \`cluster status\` p99 | leader CPU | 3 members' CPU | simulator CPU | specs left out | errors |"
  echo "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
} >"$out"
for size in $SIZES; do
  nodes=${size%x*} tasks=${size#*x}
  for run in $(seq "$RUNS"); do
    for which in base head; do
      dir=$HOIST_BIN_DIR label=$head_label extra=${HEAD_ARGS:-}
      [ "$which" = base ] && dir=$BASE_BIN_DIR label=$base_label extra=${BASE_ARGS:-}
      echo "sim-compare: $size, run $run, $which" >&2
      # shellcheck disable=SC2086 # the extra arguments split on spaces
      "$dir/hoist-sim" --nodes "$nodes" --tasks "$tasks" --timeout "$TIMEOUT" --json $extra \
        --controller-bin "$dir/hoist-controller" >"$work/r.json" 2>"$work/r.log" || true
      python3 bench/lib/sim_row.py "$work/r.json" "${size/x/ × }" "$which ($label)" \
        --cells join,fill,rate,tenths,flatness,rss,rss_joined,conns_joined,node_ls_p99,status_p99,leader_cpu,members_cpu,sim_cpu,specs_left_out,errors >>"$out"
    done
  done
done
cat "$out"
