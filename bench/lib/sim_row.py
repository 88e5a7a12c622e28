"""One table row's cells from a hoist-sim --json report, for the sim benches' Markdown tables.

Usage from a bench script run at the repository's root:
    python3 bench/lib/sim_row.py REPORT.json FIRST_CELLS... [--cells CELL,...]
prints `| FIRST_CELLS | cells... |`. With no readable report, the row says why.
"""
import json
import sys

CELLS = {
    "join": lambda r: fmt(r["nodes"]["join_seconds"], " s"),
    "fill": lambda r: fmt(r["tasks"]["seconds_to_all_running"], " s"),
    "rate": lambda r: fmt(r["placements"]["per_second_overall"]),
    "tenths": lambda r: " ".join(fmt(x) for x in r["placements"]["per_second_by_decile"]),
    "flatness": lambda r: "-" if r["placements"]["flatness"] is None else f"{r['placements']['flatness']:.2f}",
    "rss": lambda r: fmt(r["controllers"]["leader_rss_bytes_per_task"]) + " B",
    "rss_joined": lambda r: ", ".join(fmt(None if m["rss_kib_before_services"] is None
                                          else m["rss_kib_before_services"] / 1024, " MiB")
                                      for m in r["controllers"]["members"]),
    "conns_joined": lambda r: ", ".join(fmt(m.get("connections_before_services"))
                                        for m in r["controllers"]["members"]),
    "node_ls_p99": lambda r: fmt(r["api"]["node_ls"]["p99_ms"], " ms"),
    "status_p99": lambda r: fmt(r["api"].get("cluster_status", {}).get("p99_ms"), " ms"),
    "leader_cpu": lambda r: fmt(next((m.get("cpu_seconds_fill") for m in r["controllers"]["members"]
                                      if m["leader"]), None), " s"),
    "members_cpu": lambda r: fmt(sum(m.get("cpu_seconds_fill") or 0 for m in r["controllers"]["members"]), " s"),
    "sim_cpu": lambda r: fmt(r["controllers"].get("simulator_cpu_seconds_fill"), " s"),
    "specs_left_out": lambda r: specs_left_out(r.get("specs")),
    "errors": lambda r: ", ".join(
        f"{k} {v}" for k, v in r["errors"].items() if v and k != "status_batches") or "none",
}


def specs_left_out(specs):
    if not specs:
        return "-"
    total = specs["sent"] + specs["left_out"]
    return f"{100 * specs['left_out'] / max(total, 1):.0f} % of {total:,}"


def fmt(v, unit=""):
    return "-" if v is None else f"{v:,.1f}{unit}" if unit else f"{v:,.0f}"


def main(argv):
    path, cells = argv[1], argv[-1].split(",")
    first = argv[2:-2]
    try:
        report = json.load(open(path))
        row = [CELLS[c](report) for c in cells]
    except Exception as e:  # a run that died leaves no report, or half of one
        row = [f"no report ({e})"] + [""] * (len(cells) - 1)
    print("| " + " | ".join(first + row) + " |")


if __name__ == "__main__":
    main(sys.argv)
