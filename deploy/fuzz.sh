#!/usr/bin/env bash
# Builds Hoist's fuzz targets (fuzz/, cargo-fuzz with libFuzzer and AddressSanitizer) and runs
# each for SECONDS (default 60), one after the other, starting from seeds made from the repository
# (golden files, example specs, Compose and Dockerfile test data, small layer tars) and from the
# corpus earlier runs kept under fuzz/corpus/. A crash stops only its own target; at the end the
# script lists every crash (fuzz/artifacts/TARGET/crash-*) and exits 1 if there was one.
#
#   deploy/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz, which it
# installs from crates.io when it is missing. Builds take the workspace's cargo lock
# (HOIST_CARGO_LOCK, default /tmp/hoist-cargo.lock), as `hcargo` does; runs do not.
# Reproduce a crash: fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail

secs="${1:-60}"
shift || true
repo="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$repo/fuzz"
lock="${HOIST_CARGO_LOCK:-/tmp/hoist-cargo.lock}"
started=$(date +%s)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io" >&2
    flock "$lock" cargo install cargo-fuzz --locked
fi

cd "$fuzz"
# Optimised, with debug assertions (integer overflow is a crash too): cargo-fuzz's default.
flock "$lock" cargo +nightly fuzz build
bins="$fuzz/target/x86_64-unknown-linux-gnu/release"
built=$(date +%s)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

seeds="$fuzz/target/seeds"
rm -rf "$seeds"
golden="$repo/proto/golden"

# seed TARGET SELECTOR FILE: FILE behind the byte that picks what the target decodes it as.
seed() {
    mkdir -p "$seeds/$1"
    { printf "\\x$(printf %02x "$2")"; cat "$3"; } >"$seeds/$1/$2-$(basename "$3")"
}

# The message kinds of agent_messages and raft_messages, in their selector order; the
# selector byte is KIND * 3 + FORMAT.
agent_kinds=(register-request register-response heartbeat heartbeat-ack assignments
    status-report status-ack service-endpoints overlay-report volume-report session-requests
    session-frame service-spec node task rollout request response)
raft_kinds=(raft-entry vote committed purged snapshot-meta identity append-entries-request
    append-entries-result vote-request vote-result install-snapshot-request
    install-snapshot-result propose outcomes request response stall-notice state-snapshot)

for format in 0 1 2; do
    for file in "$golden/v$format"/*.bin; do
        name=$(basename "$file" .bin)
        for i in "${!agent_kinds[@]}"; do
            case "$name" in
                "${agent_kinds[$i]}" | "${agent_kinds[$i]}"-*) seed agent_messages $((i * 3 + format)) "$file" ;;
            esac
        done
        for i in "${!raft_kinds[@]}"; do
            case "$name" in
                "${raft_kinds[$i]}" | "${raft_kinds[$i]}"-*) seed raft_messages $((i * 3 + format)) "$file" ;;
            esac
        done
    done
done
for f in "$repo"/deploy/examples/*.toml; do seed spec_files 0 "$f"; done
for f in "$repo"/deploy/examples/*.yaml "$repo"/tests/conformance/*.toml; do
    case "$f" in *.toml) seed spec_files 0 "$f" ;; *) seed spec_files 1 "$f" ;; esac
done
mkdir -p "$seeds/compose" "$seeds/dockerfile"
cp "$repo"/cli/src/compose/testdata/*.yaml "$seeds/compose/"
cp "$repo"/agent/src/image/build/testdata/*Dockerfile "$seeds/dockerfile/"
for f in "$fuzz"/seeds/api_bodies/*; do
    sel=$(basename "$f" | cut -d- -f1)
    seed api_bodies "$sel" "$f"
done
# Layer tars: a file, a directory, links, a whiteout and an opaque marker, plain and gzipped.
layer="$seeds/layer-src"
mkdir -p "$layer/etc/sub" "$seeds/layer_tar"
echo hello >"$layer/etc/sub/file"
ln -s ../etc/sub/file "$layer/etc/link"
ln "$layer/etc/sub/file" "$layer/etc/hard"
: >"$layer/etc/.wh.gone"
: >"$layer/etc/sub/.wh..wh..opq"
tar -C "$layer" -cf "$seeds/layer_tar/layer.tar" .
gzip -c "$seeds/layer_tar/layer.tar" >"$seeds/layer_tar/layer.tar.gz"
rm -rf "$layer"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t" "$seeds/$t"
    echo "== $t: ${secs}s" >&2
    if ! ASAN_OPTIONS="detect_odr_violation=0" "$bins/$t" "$fuzz/corpus/$t" "$seeds/$t" \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
        -artifact_prefix="$fuzz/artifacts/$t/" -print_final_stats=1 2>"$fuzz/artifacts/$t.log"; then
        failed+=("$t")
        tail -n 40 "$fuzz/artifacts/$t.log" >&2
    else
        grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE" "$fuzz/artifacts/$t.log" >&2 || true
    fi
done

end=$(date +%s)
echo "fuzz.sh: built in $((built - started)) s, ran ${#targets[@]} targets in $((end - built)) s" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]}" >&2
    ls "$fuzz"/artifacts/*/crash-* "$fuzz"/artifacts/*/timeout-* "$fuzz"/artifacts/*/oom-* 2>/dev/null >&2 || true
    exit 1
fi
