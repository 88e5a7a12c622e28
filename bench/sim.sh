#!/usr/bin/env bash
# The controller at scale (issue 18): hoist-sim joins simulated nodes (the real agent client, TLS,
# thousands per process) to a 3-member controller cluster it starts on loopback, applies services
# totalling TASKS replicas, and measures the fill (placements/s per tenth), the members' RSS per
# task, `node ls`/`service ps` latency during the fill, and the time to move the replicas of
# KILL nodes that go silent at once; then the PHASES after the fill (idle CPU, assignment latency,
# a rolling update, a member restart, a leader kill: bench/README.md). Two runs: a small one, then the largest that fitted in ~5 min
# on the 2-core VM (2,000 × 50,000 and 2,000 × 35,000 did not: bench/README.md).
# Writes bench/results/sim-<date>.{json,md}. Not part of the test suite. No peer runs beside it:
# no other orchestrator has a simulator of this protocol.
#
#   bench/sim.sh    SIZES="1000x10000 2000x20000" KILL=20 TIMEOUT=5m SUFFIX= (env overrides; SUFFIX
#                   names the results sim-<date>-SUFFIX)
#                   PHASES="--idle-secs 10 --update-service --assignment-latency --kill-leader
#                   --restart-member --add-member" (the default; PHASES= for the fill and the node
#                   kill only); SNAPSHOTS=N,M passes --member-snapshots (the members'
#                   --snapshot-every and --keep-logs; default: the controller's)
#   HOIST_BIN_DIR=DIR uses hoist-sim and hoist-controller from DIR instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000x10000 2000x20000}
KILL=${KILL:-20}
TIMEOUT=${TIMEOUT:-5m}
PHASES=${PHASES---idle-secs 10 --update-service --assignment-latency --kill-leader --restart-member --add-member}
SNAPSHOTS=${SNAPSHOTS:-}
. bench/lib/sim.sh
work=$(mktemp -d /tmp/hoist-sim-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

for size in $SIZES; do
  nodes=${size%x*} tasks=${size#*x}
  echo "hoist-sim: $nodes nodes, $tasks tasks, $KILL killed" >&2
  start=$(date +%s)
  # Exit 1 means a phase did not finish in time: the report says which, and is kept.
  # shellcheck disable=SC2086 # PHASES is a list of flags
  "$sim" --nodes "$nodes" --tasks "$tasks" --kill-nodes "$KILL" --timeout "$TIMEOUT" --json $PHASES \
    ${SNAPSHOTS:+--member-snapshots "$SNAPSHOTS"} \
    --controller-bin "$HOIST_BIN_DIR/hoist-controller" >"$work/$size.json" || [ $? = 1 ]
  echo "$nodes $tasks $(( $(date +%s) - start )) $work/$size.json" >>"$work/runs"
done

mkdir -p bench/results
day=$(date -u +%F)
python3 - "$work/runs" "bench/results/sim-$day${SUFFIX:+-$SUFFIX}" <<'PY'
import json, os, platform, sys
runs = []
for line in open(sys.argv[1]):
    nodes, tasks, wall, path = line.split()
    runs.append({"nodes": int(nodes), "tasks": int(tasks), "wall_seconds": int(wall), "report": json.load(open(path))})
out = sys.argv[2]
def f(v, d=0): return "-" if v is None else f"{v:.{d}f}"
lines = [
    "| nodes × tasks | joined (s) | all running (s) | placements/s overall | per tenth of the fill (placements/s) | flatness | leader RSS after (MiB) | leader RSS per task (B) | `node ls` p50/p99 (ms) | `service ps` p50/p99 (ms) | killed nodes → tasks moved (s) | errors |",
    "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
]
for r in runs:
    rep = r["report"]
    n, t, p, c, a, k, e = (rep[x] for x in ("nodes", "tasks", "placements", "controllers", "api", "kill", "errors"))
    leader = next((m for m in c["members"] if m["leader"]), None)
    rss = leader["rss_kib_after_fill"] / 1024 if leader and leader["rss_kib_after_fill"] else None
    deciles = " ".join(f(x) for x in p["per_second_by_decile"])
    killed = f"{k['nodes']} nodes, {k['tasks_on_them']} tasks → {f(k['seconds'], 1)}" if k else "-"
    errs = ", ".join(f"{key} {v}" for key, v in e.items() if v and key != "status_batches") or "none"
    lines.append(
        f"| {r['nodes']} × {r['tasks']} | {f(n['join_seconds'], 1)} ({n['joined']}) | {f(t['seconds_to_all_running'], 1)} ({t['running']}) "
        f"| {f(p['per_second_overall'])} | {deciles} | {f(p['flatness'], 2)} | {f(rss, 1)} | {f(c['leader_rss_bytes_per_task'])} "
        f"| {f(a['node_ls']['p50_ms'], 1)}/{f(a['node_ls']['p99_ms'], 1)} | {f(a['service_ps']['p50_ms'], 1)}/{f(a['service_ps']['p99_ms'], 1)} "
        f"| {killed} | {errs} |")
def phase(rep, key, text):
    p = rep.get(key)
    if p is None:
        return "not run"
    return text(p) + ("" if p["finished"] else f" (NOT finished: {p.get('error')})")
lines += [
    "",
    "| nodes × tasks | idle CPU, % of a core (members; leader*) / simulator | assignment → agent p50/p99/max (ms, K) | rolling update (replicas, parallelism → s) | member restart: catch-up (s), snapshots installed, data dir / snapshot (MiB) | member added: voter / caught up (s), snapshots installed, snapshot (MiB) | leader kill: write after (s), elections, then assignment → agent p50/p99 (ms), nodes' polls back p50/all (s, an upper bound), min running |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]
for r in runs:
    rep = r["report"]
    idle = phase(rep, "idle", lambda p: " ".join(f(m["cpu_percent"], 1) + ("*" if m["leader"] else "") for m in p["members"]) + f" / {f(p['simulator_cpu_percent'], 1)}")
    lat = phase(rep, "assignment_latency", lambda p: f"{f(p['p50_ms'], 1)}/{f(p['p99_ms'], 1)}/{f(p['max_ms'], 1)} ({p['replicas_added']})")
    upd = phase(rep, "update", lambda p: f"{p['replicas']}, {p['parallelism']} → {f(p['seconds'], 1)}")
    mib = lambda b: "-" if b is None else f"{b / 1048576:.1f}"
    rst = phase(rep, "restart_member", lambda p: f"{f(p['catch_up_seconds'], 2)}, {p['snapshots_installed']}, {mib(p['data_dir_bytes'])} / {mib(p['snapshot_bytes'])}")
    after = lambda a: "-" if not a else f"{f(a['p50_ms'], 1)}/{f(a['p99_ms'], 1)}"
    add = phase(rep, "add_member", lambda p: f"{f(p['voter_seconds'], 2)} / {f(p['catch_up_seconds'], 2)}, {p['snapshots_installed']}, {mib(p['snapshot_bytes'])}")
    kl = phase(rep, "kill_leader", lambda p: f"{f(p['write_seconds'], 2)}, {p['elections']}, {after(p.get('assignment_after'))}, {f(p['polls_back_p50_seconds'], 2)}/{f(p['polls_back_seconds'], 2)}, {p['min_running']}/{p['expected_running']}")
    lines.append(f"| {r['nodes']} × {r['tasks']} | {idle} | {lat} | {upd} | {rst} | {add} | {kl} |")
md = "\n".join(lines)
json.dump({"machine": f"{platform.node()} {os.cpu_count()} cpus", "runs": runs}, open(out + ".json", "w"), indent=1)
open(out + ".md", "w").write(md + "\n")
print(md)
PY
