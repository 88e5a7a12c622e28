#!/usr/bin/env bash
# Builds a past release of Hoist from its commit (listed in deploy/releases) into
# target/releases/VERSION/, once per machine: the upgrade test runs it beside the current build.
# Prints the directory of its binaries on the last line. Needs the git history (a clone, not an
# archive) and cargo.
#
#   deploy/build-release.sh 0.1.0
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: deploy/build-release.sh VERSION (see deploy/releases)}
commit=$(awk -v v="$version" '$1 == v { print $3 }' deploy/releases)
[ -n "$commit" ] || { echo "build-release: no release $version in deploy/releases" >&2; exit 1; }
root=$PWD/target/releases/$version
bins=$root/target/x86_64-unknown-linux-gnu/debug
mkdir -p "$root"
exec 9>"$root.lock"
flock 9
if [ "$(cat "$root/commit" 2>/dev/null)" = "$commit" ] \
  && [ -x "$bins/hoist-controller" ] && [ -x "$bins/hoist-agent" ] && [ -x "$bins/hoist" ]; then
  echo "$bins"
  exit 0
fi
git cat-file -e "$commit^{commit}" 2>/dev/null || {
  echo "build-release: commit $commit of $version is not in this clone (a shallow one? git fetch --unshallow)" >&2
  exit 1
}
echo "build-release: building Hoist $version ($commit) into $root (once per machine)" >&2
rm -rf "$root/src" "$root/commit"
mkdir -p "$root/src"
git archive "$commit" | tar -x -C "$root/src"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
(cd "$root/src" && CARGO_TARGET_DIR="$root/target" cargo build --bins >&2)
echo "$commit" > "$root/commit"
echo "$bins"
