#!/usr/bin/env bash
# Installs what Hoist needs on a Debian 12 host (as root): busybox-static for the sample image,
# nftables for published ports, iproute2 and util-linux for the lab, e2fsprogs for the disk-stall
# test's loop-mounted member disks, curl for checks. Idempotent and
# quick when everything is already there. Image tests use docker-registry, skopeo, umoci, htpasswd
# (apache2-utils) and openssl as real peers; the routing-mesh test loads services with hey.
# golang-go (Go 1.19) is the toolchain deploy/go-toolchain-image.sh packs into the golang:1.19
# image of the Go multi-stage build test and benchmark.
set -euo pipefail
need=()
for pkg in git busybox-static nftables iproute2 util-linux e2fsprogs procps curl tar docker-registry skopeo umoci apache2-utils openssl hey golang-go; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "install-deps: cargo (Rust toolchain) is required" >&2; exit 1; }
