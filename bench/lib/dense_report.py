#!/usr/bin/env python3
"""The table of bench/dense.sh: `dense_report.py RAW.json WORKDIR OUT` reads the raw numbers and
the hyperfine exports in WORKDIR, writes OUT.md and OUT.json, and prints the table."""
import json
import os
import platform
import statistics
import sys

raw_path, work, out = sys.argv[1:4]
raw = json.load(open(raw_path))
n = raw["n"]
MIB = 1024


def hyperfine(name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return {}
    res = {}
    for r in json.load(open(path))["results"]:
        t = sorted(x * 1000 for x in r["times"])
        res[r["command"]] = {
            "p50_ms": statistics.median(t),
            "p99_ms": t[min(len(t) - 1, int(round(0.99 * (len(t) - 1))))],
            "mean_ms": statistics.mean(t),
            "sd_ms": statistics.stdev(t) if len(t) > 1 else 0.0,
            "runs": len(t),
        }
    return res


def per(kb, count):
    return kb / count if count else None


def side(shims, count, daemon_before=None, daemon_after=None):
    """Per-container numbers of one system, KiB."""
    forker = shims.get("forker", {}).get("procs", 0)
    d = {
        "supervisors": shims["procs"] - forker,
        "forker_pss_kib": shims["forker"]["pss_kb"] if forker else None,
        "supervisor_pss_kib": per(shims["pss_kb"], count),
        "supervisor_pss_anon_kib": per(shims["pss_anon_kb"], count),
        "supervisor_rss_kib": per(shims["rss_kb"], count),
        "supervisor_threads": per(shims["threads"], count),
        "container_pid1_pss_kib": per(shims["children"]["pss_kb"], count),
        "daemon_rss_growth_kib": 0.0,
        "daemon_pss_growth_kib": 0.0,
    }
    if daemon_before is not None:
        d["daemon_rss_growth_kib"] = (daemon_after["rss_kb"] - daemon_before["rss_kb"]) / count
        d["daemon_pss_growth_kib"] = (daemon_after["pss_kb"] - daemon_before["pss_kb"]) / count
    d["overhead_kib"] = d["supervisor_pss_kib"] + d["daemon_rss_growth_kib"]
    d["overhead_rss_kib"] = d["supervisor_rss_kib"] + d["daemon_rss_growth_kib"]
    return d


h = raw["hoist"]
result = {"n": n, "par": raw["par"], "raised": raw["raised"], "systems": {}}
hoist = side(h["shims"], n, h["agent_before"], h["agent_after"])
hoist["start_per_s"] = n / h["start_s"]
hoist["list"] = hyperfine("ps.json")
hoist["restart_sigterm_s"] = h["restart_term_s"]
hoist["restart_sigkill_s"] = h["restart_kill_s"]
hoist["survived_restarts"] = h["survived_restarts"]
hoist["restore_log"] = h["restore_log"]
hoist["agent_rss_kib"] = {"before": h["agent_before"]["rss_kb"], "after": h["agent_after"]["rss_kb"],
                          "after_restart": h["agent_restored"]["rss_kb"]}
hoist["agent_threads"] = {"before": h["agent_before"]["threads"], "after": h["agent_after"]["threads"]}
hoist["remove_per_s"] = n / h["rm_s"]
hoist["agent_fds"] = h["agent_fds"]
hoist["run_tmpfs_kib"] = h["run_tmpfs_kib"]
result["systems"]["hoist"] = hoist
b = raw.get("bridge") or {}
if b:
    bridge = side(b["shims"], b["n"], b["agent_before"], b["agent_after"])
    bridge["n"] = b["n"]
    bridge["start_per_s"] = b["n"] / b["start_s"]
    result["systems"]["hoist_bridge"] = bridge
c = raw.get("conmon") or {}
if c:
    conmon = side(c["mem"], n)
    conmon["start_per_s"] = n / c["start_s"]
    conmon["list"] = hyperfine("runc-list.json")
    result["systems"]["conmon"] = conmon
k = raw.get("containerd") or {}
if k:
    ctrd = side(k["shims"], n, k["daemon_before"], k["daemon_after"])
    ctrd["start_per_s"] = n / k["start_s"]
    ctrd["list"] = hyperfine("ctr-ls.json")
    ctrd["restart_sigterm_s"] = k["restart_s"]
    result["systems"]["containerd"] = ctrd

cols = [("hoist", f"hoist (none, {n})")]
if "hoist_bridge" in result["systems"]:
    cols.append(("hoist_bridge", f"hoist (bridge, {result['systems']['hoist_bridge']['n']})"))
if "conmon" in result["systems"]:
    cols.append(("conmon", f"conmon + runc ({n})"))
if "containerd" in result["systems"]:
    cols.append(("containerd", f"containerd + shim-runc-v2 ({n})"))


def cell(sys_, key, fmt="{:.0f}"):
    v = result["systems"][sys_].get(key)
    return "-" if v is None else fmt.format(v)


def list_cell(sys_):
    lst = result["systems"][sys_].get("list") or {}
    return "<br>".join(f"`{name}` {v['p50_ms']:.1f} / {v['p99_ms']:.1f} ({v['mean_ms']:.1f} ± {v['sd_ms']:.1f})"
                       for name, v in lst.items()) or "-"


def restart_cell(sys_):
    s = result["systems"][sys_]
    parts = []
    if "restart_sigterm_s" in s:
        parts.append(f"SIGTERM {s['restart_sigterm_s']:.2f}")
    if "restart_sigkill_s" in s:
        parts.append(f"SIGKILL {s['restart_sigkill_s']:.2f}")
    return ", ".join(parts) or "-"


rows = [
    ("supervisor PSS per container, KiB", lambda s: cell(s, "supervisor_pss_kib")),
    ("  of which private (PSS_Anon), KiB", lambda s: cell(s, "supervisor_pss_anon_kib")),
    ("supervisor RSS per container, KiB", lambda s: cell(s, "supervisor_rss_kib")),
    ("  supervisor forker's PSS (one process, in the PSS above), KiB", lambda s: cell(s, "forker_pss_kib")),
    ("daemon RSS growth per container, KiB", lambda s: cell(s, "daemon_rss_growth_kib")),
    ("**overhead per container (PSS + daemon growth), KiB**", lambda s: "**" + cell(s, "overhead_kib") + "**"),
    ("overhead counting RSS instead of PSS, KiB", lambda s: cell(s, "overhead_rss_kib")),
    ("supervisor threads per container", lambda s: cell(s, "supervisor_threads", "{:.1f}")),
    ("container's own pid 1 (`sleep`) PSS, KiB (not counted)", lambda s: cell(s, "container_pid1_pss_kib")),
    (f"start rate, containers/s ({raw['par']} at a time)", lambda s: cell(s, "start_per_s", "{:.1f}")),
    ("list with all running: p50 / p99 ms (mean ± sd)", list_cell),
    ("daemon restart until all listed running, s", restart_cell),
]
lines = [
    f"# Dense hosts, {os.uname().nodename}, {platform.machine()}, {os.cpu_count()} CPUs, {n} containers",
    "",
    "One run of `bench/dense.sh`: busybox `sleep 1d`, no network (a new empty network namespace),",
    "each container in its own cgroups. Supervisor = `hoist-agent __shim`, `conmon`, or",
    "`containerd-shim-runc-v2`; daemon = `hoist-agent` or `containerd` (conmon has none).",
    "",
    "| what | " + " | ".join(t for _, t in cols) + " |",
    "| --- |" + " ---: |" * len(cols),
]
for label, f in rows:
    lines.append(f"| {label} | " + " | ".join(f(s) for s, _ in cols) + " |")
lines.append("")
ho = result["systems"]["hoist"]
peers = {s: result["systems"][s]["overhead_kib"] for s in ("conmon", "containerd") if s in result["systems"]}
lines.append(f"Targets (issue 18): overhead ≤ 1024 KiB per container: {ho['overhead_kib']:.0f} KiB, "
             + ("met" if ho["overhead_kib"] <= MIB else "missed") + ".")
for s, v in peers.items():
    lines.append(f"≤ half of {s}'s ({v:.0f} KiB → ≤ {v / 2:.0f}): "
                 + ("met" if ho["overhead_kib"] <= v / 2 else "missed") + f" (hoist is {ho['overhead_kib'] / v:.2f}× of it).")
lines.append(f"Re-adoption of {n} ≤ 2 s: SIGTERM {ho['restart_sigterm_s']:.2f} s, SIGKILL {ho['restart_sigkill_s']:.2f} s: "
             + ("met" if max(ho["restart_sigterm_s"], ho["restart_sigkill_s"]) <= 2 else "missed") + ".")
lines.append("")
lines.append(f"Agent RSS: {ho['agent_rss_kib']['before']} KiB before, {ho['agent_rss_kib']['after']} KiB with {n} running, "
             f"{ho['agent_rss_kib']['after_restart']} KiB after restoring them; threads {ho['agent_threads']['before']} → {ho['agent_threads']['after']}; "
             f"open files with {n} running: {ho['agent_fds']}; the agent's tmpfs of volatile files: {ho['run_tmpfs_kib']} KiB used (of 256 MiB). "
             f"Agent start to its `hoist-agent ready` log line (restore done, socket bound): "
             + ", ".join(f"{sig} {v['start_to_ready_ms']:.0f} ms ({v['restored']} restored)" for sig, v in ho["restore_log"].items())
             + f". Supervisors survived both restarts: {ho['survived_restarts']}. Removal: {ho['remove_per_s']:.0f} containers/s.")
if raw["raised"]:
    lines.append("")
    lines.append(f"Limits raised for the run: {raw['raised']}.")
open(out + ".md", "w").write("\n".join(lines) + "\n")
json.dump(result, open(out + ".json", "w"), indent=2)
print("\n".join(lines))
