# Requests Docker Swarm mode loses during a rolling update under load. Source after
# bench/lib/docker.sh, then, with dockerd up (docker_up NETNS WORKDIR ADDR):
#
#   swarm_lost_requests WORKDIR BUSYBOX_TAR
#     -> prints one line: swarm_lost=<N> swarm_total=<M> swarm_update_s=<seconds>
#
# WORKDIR: a directory for the client image tarball and hey's report (hey.txt stays there for
# diagnosis). BUSYBOX_TAR: the rootfs from deploy/busybox-image.sh. The function makes a copy of it
# with `hey` (and, if hey is dynamically linked, the libraries ldd names) appended and imports that
# as its own image. If the engine is not in a swarm yet, it runs `docker swarm init --advertise-addr
# d0` and leaves the swarm at the end. It removes everything it made (client container, service,
# network, image), on failure too. Returns non-zero, printing nothing on stdout, if a step fails.
#
# What it measures: a service of 3 busybox httpd replicas (`httpd -f -p 80`; busybox httpd closes
# every connection, so every request is a new connection and, in Go, a new DNS lookup) on an
# attachable overlay network. A client container on that network runs
# `hey -c 20 -q 100 -t 5 http://swl-web/` (20 workers x 100 req/s: at most 2,000 req/s; what the
# machine reaches is in hey.txt). 3 s into the load, `docker service update --detach --env-add V=2`
# with Swarm's default update policy (parallelism 1, delay 0, stop-first, monitor 5 s); the load
# runs until `{{.UpdateStatus.State}}` is `completed`, then 3 s more, and is stopped with SIGINT
# (hey then prints its report; the update takes longer than a fixed `-z 30s` on this machine).
# Lost = responses other than 2xx + every error in hey's "Error distribution" (dial errors,
# timeouts, resets). Total = every request hey finished. swarm_update_s = from the update command
# to `completed`.
#
# The replicas run with `--init`, as Hoist's do (an init as pid 1 forwards the stop signal): without
# it busybox httpd, as pid 1, ignores SIGTERM and every old replica keeps serving until the 10 s
# SIGKILL, which hides when Swarm stops sending it clients.
#
# Limits: the kernel has no IPVS (/proc/net/ip_vs), so Swarm's VIP and its ingress routing mesh
# cannot balance here. The service uses `--endpoint-mode dnsrr`: Docker's embedded DNS
# (127.0.0.11) answers the service name with the running tasks' addresses, shuffled, and the
# client picks from them. This is Swarm's discovery without IPVS, not the VIP path most Swarm
# deployments use. Go's dialer also tries the next address of the answer when a connect fails
# (refused, unreachable), which hides a stale address a simpler client would fail on. One engine,
# one node: the overlay never leaves the host.

swarm_lost_requests() { # WORKDIR BUSYBOX_TAR
  local work=$1 tar=$2
  local net=swl-net svc=swl-web img=swl-busybox-hey client=swl-client inited=0 rc=0 line
  [ -f "$tar" ] || { echo "swarm_lost_requests: no tarball $tar" >&2; return 1; }
  mkdir -p "$work" || return 1
  if [ "$(docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != active ]; then
    docker swarm init --advertise-addr d0 >/dev/null || return 1
    inited=1
  fi
  line=$(_swl_run "$work" "$tar" "$net" "$svc" "$img" "$client") || rc=$?
  _swl_clean "$net" "$svc" "$img" "$client"
  [ "$inited" = 1 ] && docker swarm leave --force >/dev/null 2>&1
  [ "$rc" = 0 ] && echo "$line"
  return "$rc"
}

_swl_run() { # WORKDIR TAR NET SVC IMG CLIENT
  local work=$1 tar=$2 net=$3 svc=$4 img=$5 client=$6
  local hey i n state t0 t1 libs
  hey=$(command -v hey) || { echo "swarm_lost_requests: hey not found" >&2; return 1; }
  # The client image: the busybox rootfs plus hey (at /bin/hey) and the shared objects it needs.
  cp "$tar" "$work/swl-client.tar" || return 1
  libs=$(ldd "$hey" 2>/dev/null | grep -o '/[^ ]*' | sed 's,^/,,')
  tar --append --dereference --numeric-owner --owner=0 --group=0 -f "$work/swl-client.tar" -C / \
    --transform "s,^${hey#/}\$,bin/hey," "${hey#/}" $libs || return 1
  docker import "$work/swl-client.tar" "$img" >/dev/null || return 1
  rm -f "$work/swl-client.tar"

  docker network create -d overlay --attachable "$net" >/dev/null || return 1
  docker service create --detach --name "$svc" --replicas 3 --endpoint-mode dnsrr --network "$net" --init \
    "$img" sh -c 'echo hello > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null 2>&1 || return 1
  for i in $(seq 600); do
    n=$(docker service ps "$svc" --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running')
    [ "$n" -ge 3 ] && break
    sleep 0.2
  done
  [ "$n" -ge 3 ] || { echo "swarm_lost_requests: $n of 3 replicas running after 120 s" >&2; return 1; }
  # Until the name answers: 30 requests in a row, all 200 (a task is Running a moment before its
  # httpd listens). hey, not wget: Debian's static busybox wget segfaults on a refused connect.
  local ok=0 out
  for i in $(seq 30); do
    out=$(docker run --rm --network "$net" "$img" /bin/hey -n 30 -c 1 -t 2 "http://$svc/" 2>&1)
    case $out in *"[200]"*"30 responses"*) ok=1; break ;; esac
    sleep 1
  done
  [ "$ok" = 1 ] || { echo "swarm_lost_requests: the service does not answer before the update" >&2; return 1; }

  # The load: no fixed duration (-z far beyond the update), stopped with SIGINT below.
  docker run -d --name "$client" --network "$net" "$img" /bin/hey -z 900s -c 20 -q 100 -t 5 "http://$svc/" >/dev/null || return 1
  sleep 3
  t0=$(date +%s.%N)
  docker service update --detach --env-add V=2 "$svc" >/dev/null 2>&1 || return 1
  for i in $(seq 3000); do # up to 10 min
    state=$(docker service inspect -f '{{.UpdateStatus.State}}' "$svc")
    case $state in completed|paused|rollback_*) break ;; esac
    sleep 0.2
  done
  t1=$(date +%s.%N)
  [ "$state" = completed ] || { echo "swarm_lost_requests: update state '$state'" >&2; return 1; }
  sleep 3
  docker kill -s INT "$client" >/dev/null || return 1
  docker wait "$client" >/dev/null
  docker logs "$client" >"$work/hey.txt" 2>&1
  grep -q '^Summary:' "$work/hey.txt" || { echo "swarm_lost_requests: no report from hey (see $work/hey.txt)" >&2; return 1; }
  # Status lines: "  [200]	N responses"; error lines: "  [N]	Get ...: dial tcp ...".
  awk -v t0="$t0" -v t1="$t1" '
    /^Status code distribution:/ { sec = "status"; next }
    /^Error distribution:/ { sec = "error"; next }
    /^[A-Za-z]/ { sec = "" }
    sec == "status" && match($0, /\[[0-9]+\][ \t]+[0-9]+ responses/) {
      split(substr($0, RSTART + 1), a, /[\] \t]+/); total += a[2]; if (a[1] < 200 || a[1] > 299) lost += a[2]
    }
    sec == "error" && match($0, /^[ \t]*\[[0-9]+\]/) {
      n = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", n); total += n; lost += n
    }
    END { printf "swarm_lost=%d swarm_total=%d swarm_update_s=%.2f\n", lost, total, t1 - t0 }
  ' "$work/hey.txt"
}

_swl_clean() { # NET SVC IMG CLIENT
  local i
  docker rm -f "$4" >/dev/null 2>&1
  docker service rm "$2" >/dev/null 2>&1
  for i in $(seq 150); do
    [ -z "$(docker ps -aq --filter "label=com.docker.swarm.service.name=$2")" ] && break
    sleep 0.2
  done
  for i in $(seq 50); do
    docker network inspect "$1" >/dev/null 2>&1 || break
    docker network rm "$1" >/dev/null 2>&1 && break
    sleep 0.2
  done
  docker image rm -f "$3" >/dev/null 2>&1
  return 0
}
