#!/usr/bin/env bash
# Sets up Hoist on this host and runs it (as root, on Debian 12): installs dependencies, builds
# release binaries into /usr/local/bin, starts hoist-agent, imports a busybox image built from
# Debian's busybox-static, runs a container and serves a page on port 8080; then starts a local
# cluster (3 controllers, 2 agent hosts in network namespaces, deploy/local-cluster.sh) running a
# sample service with a replica on each agent host.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root" >&2; exit 1; }
deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== building (release)"
cargo build --release --workspace --bins
install -m 0755 target/x86_64-unknown-linux-gnu/release/hoist target/x86_64-unknown-linux-gnu/release/hoist-agent \
  target/x86_64-unknown-linux-gnu/release/hoist-controller /usr/local/bin/

echo "== starting hoist-agent"
if ! hoist info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    install -m 0644 deploy/hoist-agent.service /etc/systemd/system/hoist-agent.service
    systemctl daemon-reload
    systemctl restart hoist-agent
  else
    mkdir -p /var/log
    nohup hoist-agent >>/var/log/hoist-agent.log 2>&1 &
  fi
  for _ in $(seq 100); do hoist info >/dev/null 2>&1 && break; sleep 0.1; done
fi
hoist info

echo "== importing the busybox image"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deploy/busybox-image.sh "$tmp/busybox.tar"
hoist image import "$tmp/busybox.tar" busybox
hoist image ls

echo "== running a sample container"
hoist run --rm busybox sh -c 'echo "Hello from container $(hostname), pid $$, as $(id -un)"'

echo "== serving a page from a container on port 8080"
hoist rm -f hello-web >/dev/null 2>&1 || true
hoist run -d --name hello-web -p 8080:80 --memory 32m busybox httpd -f -p 80 -h /var/www >/dev/null
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/ && break; sleep 0.1; done
hoist ps
echo "Try: hoist logs hello-web; hoist exec hello-web ps; hoist stop hello-web; hoist rm hello-web"

echo "== a local cluster: 3 controllers, 2 agent hosts, a sample service"
deploy/local-cluster.sh up
