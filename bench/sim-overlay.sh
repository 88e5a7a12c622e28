#!/usr/bin/env bash
# What the overlay costs the controller at scale (issue 18), three hoist-sim runs of one size in
# one go: nodes without WireGuard keys (no overlay peers at all), nodes with keys whose polls never
# name the overlay they hold (every answer carries every peer: agents before the overlay index),
# and nodes with keys as the agent polls (the overlay only when it changed, then only the changed
# peers). Writes bench/results/sim-overlay-<date>.md. Not part of the test suite.
#
#   bench/sim-overlay.sh    NODES=2000 TASKS=20000 TIMEOUT=4m (env overrides)
#   HOIST_BIN_DIR=DIR uses hoist-sim and hoist-controller from DIR instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-2000}
TASKS=${TASKS:-20000}
TIMEOUT=${TIMEOUT:-4m}
. bench/lib/sim.sh
work=$(mktemp -d /tmp/hoist-sim-overlay.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=bench/results/sim-overlay-$(date -u +%F).md
{
  echo "# hoist-sim: what the overlay costs, $NODES nodes × $TASKS tasks ($(date -u +'%F %H:%M') UTC)"
  echo
  echo "\`NODES=$NODES TASKS=$TASKS bench/sim-overlay.sh\`, one run each, in this order, on $(nproc) cores."
  echo
  echo "| nodes register | polls name the overlay held | join | fill | placements/s | per tenth | errors |"
  echo "| --- | --- | ---: | ---: | ---: | --- | --- |"
} > "$out"
for mode in no-keys full changes; do
  case $mode in
    no-keys) flags=(--no-overlay); keys=no; named=- ;;
    full) flags=(--full-overlay); keys=yes; named=no ;;
    changes) flags=(); keys=yes; named=yes ;;
  esac
  echo "sim-overlay: $mode" >&2
  "$sim" --nodes "$NODES" --tasks "$TASKS" --timeout "$TIMEOUT" --json --data-dir "$work/$mode" \
    "${flags[@]}" > "$work/$mode.json" 2> "$work/$mode.log" || true
  who="without keys"
  [ "$keys" = yes ] && who="with keys"
  python3 bench/lib/sim_row.py "$work/$mode.json" "$who" "$named" \
    --cells join,fill,rate,tenths,errors >>"$out"
done
cat "$out"
