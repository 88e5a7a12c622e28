# Docker Engine for side-by-side benchmarks, contained. Source this file, then:
#
#   docker_install                 # docker.io from Debian, without starting the system's daemon
#   docker_up NETNS WORKDIR ADDR   # dockerd in a network namespace of its own; exports DOCKER_HOST
#                                  # (DOCKER_FLAGS: more dockerd flags, e.g. --metrics-addr)
#   ...docker commands...
#   docker_down                    # stops everything it started and removes what it made
#
# Why contained: Docker Engine sets the iptables FORWARD policy to DROP and loads br_netfilter.
# On the host that would drop the traffic of every test lab bridged between namespaces. Here
# dockerd runs in its own network namespace (its iptables rules and sysctls stay there) and its
# own mount namespace (so its overlay mounts vanish with it). Its data, exec root
# and socket live under WORKDIR, and br_netfilter is unloaded again if it was not loaded before.

# The CLI that comes with Debian's engine (another `docker` may come first in PATH).
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }

docker_install() {
  command -v dockerd >/dev/null && return 0
  # Debian's postinst would start the system daemon in the host's namespaces: forbid it.
  local pol=/usr/sbin/policy-rc.d made=0 rc=0
  if [ ! -e "$pol" ]; then printf '#!/bin/sh\nexit 101\n' >"$pol" && chmod +x "$pol" && made=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null || rc=$?
  [ "$made" = 1 ] && rm -f "$pol"
  return "$rc"
}

docker_up() { # NETNS WORKDIR ADDR
  DOCKER_NS=$1 DOCKER_WORK=$2
  DOCKER_HAD_BR_NETFILTER=0
  [ -d /sys/module/br_netfilter ] && DOCKER_HAD_BR_NETFILTER=1
  DOCKER_HAD_CGROUP=()
  for d in /sys/fs/cgroup/*/docker; do [ -d "$d" ] && DOCKER_HAD_CGROUP+=("$d"); done
  ip netns add "$DOCKER_NS"
  ip -n "$DOCKER_NS" link set lo up
  # A veth pair inside the namespace gives Swarm an address to advertise (no dummy module here).
  ip -n "$DOCKER_NS" link add d0 type veth peer name d1
  ip -n "$DOCKER_NS" addr add "$3/24" dev d0
  ip -n "$DOCKER_NS" link set d1 up
  ip -n "$DOCKER_NS" link set d0 up
  mkdir -p "$DOCKER_WORK"
  export DOCKER_HOST=unix://$DOCKER_WORK/docker.sock
  # Not `ip netns exec`: it remounts /sys, which hides the cgroup mounts dockerd needs.
  unshare --mount --propagation slave nsenter --net="/run/netns/$DOCKER_NS" dockerd --data-root "$DOCKER_WORK/data" --exec-root "$DOCKER_WORK/exec" \
    --pidfile "$DOCKER_WORK/docker.pid" -H "$DOCKER_HOST" ${DOCKER_FLAGS:-} >"$DOCKER_WORK/dockerd.log" 2>&1 &
  DOCKER_PID=$!
  local i
  for i in $(seq 150); do docker info >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "dockerd did not start; its log:" >&2
  tail -20 "$DOCKER_WORK/dockerd.log" >&2
  return 1
}

docker_down() {
  [ -n "${DOCKER_NS:-}" ] || return 0
  local errexit=0
  case $- in *e*) errexit=1; set +e ;; esac
  docker swarm leave --force >/dev/null 2>&1
  kill "${DOCKER_PID:-}" 2>/dev/null
  local i
  for i in $(seq 50); do kill -0 "${DOCKER_PID:-}" 2>/dev/null || break; sleep 0.2; done
  # containerd, its shims and the containers' processes all name the work dir or live in its cgroups.
  pkill -9 -f "$DOCKER_WORK" 2>/dev/null
  for d in /sys/fs/cgroup/*/docker; do
    [ -d "$d" ] || continue
    for c in "$d"/*/; do [ -f "$c/cgroup.procs" ] && xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null; done
  done
  sleep 0.5
  for d in /sys/fs/cgroup/*/docker; do
    [ -d "$d" ] || continue
    rmdir "$d"/*/ 2>/dev/null
    case " ${DOCKER_HAD_CGROUP[*]} " in *" $d "*) ;; *) rmdir "$d" 2>/dev/null ;; esac
  done
  ip netns del "$DOCKER_NS" 2>/dev/null
  [ "$DOCKER_HAD_BR_NETFILTER" = 1 ] || rmmod br_netfilter 2>/dev/null
  rm -rf "$DOCKER_WORK" 2>/dev/null
  DOCKER_NS=
  [ "$errexit" = 1 ] && set -e
  return 0
}
