#!/usr/bin/env bash
# Runs Hoist's whole test suite as root: unit tests, and end-to-end tests that start real agents on
# network-namespace hosts and drive them with the hoist CLI. Needs no network beyond package installs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the tests create namespaces, cgroups and mounts)" >&2; exit 1; }
deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# The end-to-end tests drive the binaries, so build them all first; the upgrade test also needs
# the last release (built once per machine from its commit, under target/releases/).
cargo build --workspace --bins
deploy/build-release.sh 0.1.0 >/dev/null
deploy/build-release.sh 0.2.0 >/dev/null
cargo test --workspace
