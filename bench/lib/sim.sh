# Sourced by the hoist-sim benches (sim.sh, sim-overlay.sh), from the repository's root: sets
# `sim` to the hoist-sim to run (HOIST_BIN_DIR's, else a release build of it and the controller)
# and raises the file limit (a node's registration, heartbeats and long poll each hold a
# connection on both sides).
if [ -z "${HOIST_BIN_DIR:-}" ]; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  cargo build --release -q -p hoist-controller -p hoist-sim
  HOIST_BIN_DIR=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
fi
sim=$HOIST_BIN_DIR/hoist-sim
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
