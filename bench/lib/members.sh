# A 3-member Hoist controller cluster on loopback, as the controller benchmarks run it (source it
# from the repository's root; it sources auth.sh and wait.sh, which it uses). Set CTL (the
# controller binary) and WORK (the run's directory) first. Member i keeps its data in WORK/hI,
# writes its log (standard output included: the bootstrap prints the admin token) to
# WORK/hI.log and listens on 127.0.0.1:2700I; HOIST_PID[i] is its process.

. bench/lib/auth.sh
. bench/lib/wait.sh

declare -A HOIST_PID

hoist_member() { # i [flags...]: starts member i (again, after a kill: same data dir and log)
  local i=$1; shift
  "$CTL" --data-dir "$WORK/h$i" --listen "127.0.0.1:2700$i" --id "$i" "$@" >>"$WORK/h$i.log" 2>&1 &
  HOIST_PID[$i]=$!
}

hoist_three_voters() { # succeeds once member 1 sees 3 voters and a leader
  curl -sf "http://127.0.0.1:27001/v1/cluster/status" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(m["voter"] for m in d["members"])==3 and d["leader"] else 1)'
}

hoist_start_members() { # member 1 bootstraps; 2 and 3 join with its admin token (not waited for)
  hoist_member 1 --bootstrap
  wait_until "hoist member 1" 20 curl -sf http://127.0.0.1:27001/v1/health
  bench_admin_token "$WORK/h1" "$WORK"
  hoist_member 2 --join 127.0.0.1:27001
  hoist_member 3 --join 127.0.0.1:27001
}
