#!/usr/bin/env bash
# Runs Hoist's whole test suite as root: unit tests, and end-to-end tests that start real agents on
# network-namespace hosts and drive them with the hoist CLI. Needs no network beyond package installs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the tests create namespaces, cgroups and mounts)" >&2; exit 1; }
deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# The end-to-end tests drive the binaries, so build them all first.
cargo build --workspace --bins
cargo test --workspace
