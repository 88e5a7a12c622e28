#!/usr/bin/env bash
# Installs what Hoist needs on a Debian 12 host (as root): busybox-static for the sample image,
# nftables for published ports, iproute2 and util-linux for the lab, e2fsprogs for the disk-stall
# test's loop-mounted member disks, curl for checks. Idempotent and
# quick when everything is already there. Image tests use docker-registry, skopeo, umoci, htpasswd
# (apache2-utils) and openssl as real peers; the routing-mesh test loads services with hey.
# golang-go (Go 1.19) is the toolchain deploy/go-toolchain-image.sh packs into the golang:1.19
# image of the Go multi-stage build test and benchmark. Monitoring tests check metrics with promtool
# (prometheus), drive Alertmanager (prometheus-alertmanager) and the dashboard in headless chromium.
# The API conformance test runs schemathesis (PyPI, pinned) from its own virtualenv under
# /opt/hoist/schemathesis (python3 with venv; Debian's python3-venv where the system python lacks it).
set -euo pipefail
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV=/opt/hoist/schemathesis
need=()
for pkg in git busybox-static nftables iproute2 util-linux e2fsprogs procps curl tar docker-registry skopeo umoci apache2-utils openssl hey golang-go prometheus prometheus-alertmanager chromium; do
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
# Debian's own python3: CPython 3.11.5-3.11.7 (a pyenv's, say) crash schemathesis now and then
# while it compiles examples ("AST constructor recursion depth mismatch", fixed in 3.11.8).
SCHEMATHESIS_PYTHON=/usr/bin/python3
if ! "$SCHEMATHESIS_VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" \
  || [ "$(readlink -f "$SCHEMATHESIS_VENV/bin/python3")" != "$(readlink -f "$SCHEMATHESIS_PYTHON")" ]; then
  echo "install-deps: installing schemathesis $SCHEMATHESIS_VERSION in $SCHEMATHESIS_VENV"
  if ! "$SCHEMATHESIS_PYTHON" -m venv --help >/dev/null 2>&1 || ! "$SCHEMATHESIS_PYTHON" -c 'import ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_PYTHON" -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
