# A Hoist lab for benchmarks, laid out as the test lab: one controller member and N agent hosts,
# each in a network namespace of its own on a bridge of its own. Source this file with `bin`
# (the binaries' directory) and `work` (a scratch directory) set, then:
#
#   lab_up TAG AGENTS     # HOIST_CONTROLLER and `ctl` name the member; agent i serves
#                         # $work/agent$i.sock and has the busybox image
#   lab_down [LOGS]       # ends every process it started and what they run, removes the
#                         # namespaces, cgroups, mounts and $work; keeps the logs in
#                         # target/bench-logs/LOGS when given
#
# TAG (two letters) keeps the names of concurrent runs apart: namespaces h<TAG>-<id>-*,
# cgroups hoist-<TAG>-<id>.

. bench/lib/auth.sh

lab_up() { # TAG AGENTS
  LAB_TAG=$1 LAB_AGENTS=$2
  LAB_ID=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
  LAB_BR=h${LAB_TAG}${LAB_ID}b
  LAB_PIDS=()
  local net n last i sock token
  net=10.79.$((RANDOM % 200 + 20))
  ip link add "$LAB_BR" type bridge && ip addr add "$net.1/24" dev "$LAB_BR" && ip link set "$LAB_BR" up
  local hosts=(c:11)
  for i in $(seq "$LAB_AGENTS"); do hosts+=("a$i:$((20 + i))"); done
  for h in "${hosts[@]}"; do
    n=${h%%:*}; last=${h##*:}
    ip netns add "h$LAB_TAG-$LAB_ID-$n"
    ip link add "h$LAB_TAG${LAB_ID}$n" type veth peer name eth0 netns "h$LAB_TAG-$LAB_ID-$n"
    ip link set "h$LAB_TAG${LAB_ID}$n" master "$LAB_BR" up
    ip -n "h$LAB_TAG-$LAB_ID-$n" addr add "$net.$last/24" dev eth0
    ip -n "h$LAB_TAG-$LAB_ID-$n" link set eth0 up; ip -n "h$LAB_TAG-$LAB_ID-$n" link set lo up
  done
  ctl=$net.11:7070
  export HOIST_CONTROLLER=$ctl
  nsenter --net="/run/netns/h$LAB_TAG-$LAB_ID-c" "$bin/hoist-controller" --data-dir "$work/ctl" \
    --listen "$ctl" --bootstrap 2>"$work/ctl.log" &
  LAB_PIDS+=($!)
  bench_admin_token "$work/ctl" "$work"
  for _ in $(seq 200); do curl -sf "http://$ctl/v1/cluster/token" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$(curl -sf "http://$ctl/v1/cluster/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  deploy/busybox-image.sh "$work/busybox.tar" >/dev/null
  for i in $(seq "$LAB_AGENTS"); do
    sock=$work/agent$i.sock
    nsenter --net="/run/netns/h$LAB_TAG-$LAB_ID-a$i" "$bin/hoist-agent" --data-dir "$work/agent$i" \
      --socket "$sock" --cgroup-parent "hoist-$LAB_TAG-$LAB_ID/a$i" --subnet "10.90.$i.0/24" \
      --join "$token" --controller "$ctl" 2>"$work/agent$i.log" &
    LAB_PIDS+=($!)
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    HOIST_AGENT=$sock "$bin/hoist" image import "$work/busybox.tar" busybox >/dev/null
  done
  for _ in $(seq 100); do
    [ "$("$bin/hoist" node ls -o json | grep -o '"ready"' | wc -l)" = "$LAB_AGENTS" ] && break
    sleep 0.1
  done
}

lab_down() { # [LOGS]
  [ -n "${LAB_ID:-}" ] || return 0
  local errexit=0 d c f i
  case $- in *e*) errexit=1; set +e ;; esac
  for p in "${LAB_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  local cg=(/sys/fs/cgroup/*/hoist-$LAB_TAG-$LAB_ID /sys/fs/cgroup/hoist-$LAB_TAG-$LAB_ID)
  for d in "${cg[@]}"; do
    [ -d "$d" ] || continue
    for c in "$d"/*/ "$d"/*/*/; do [ -f "$c/cgroup.procs" ] && xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null; done
  done
  pkill -9 -f "__shim $work" 2>/dev/null
  sleep 0.3
  for d in "${cg[@]}"; do
    [ -d "$d" ] && { rmdir "$d"/*/* 2>/dev/null; rmdir "$d"/* 2>/dev/null; rmdir "$d" 2>/dev/null; }
  done
  for f in "$work"/agent*/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
  ip netns del "h$LAB_TAG-$LAB_ID-c" 2>/dev/null
  for i in $(seq "$LAB_AGENTS"); do ip netns del "h$LAB_TAG-$LAB_ID-a$i" 2>/dev/null; done
  ip link del "$LAB_BR" 2>/dev/null
  if [ -n "${1:-}" ]; then
    rm -rf "target/bench-logs/$1" && mkdir -p "target/bench-logs/$1" && cp "$work"/*.log "target/bench-logs/$1/"
  fi
  # Mounts left under the work dir (the agents' tmpfs of volatile container files), deepest first.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
  LAB_ID=
  [ "$errexit" = 1 ] && set -e
  return 0
}
