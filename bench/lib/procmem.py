#!/usr/bin/env python3
"""Memory of a set of processes, read from /proc (used by bench/dense.sh).

    procmem.py shim WORK [PID...]  hoist supervisors: argv `... __shim WORK/...`; the PIDs (the
                              agents' supervisor forkers, whose pages forked supervisors
                              share) count with them, and alone under "forker"
    procmem.py conmon WORK    conmon processes with WORK in their arguments
    procmem.py ctrshim ADDR   containerd-shim-* processes started for the containerd at ADDR
    procmem.py pid PID...     the given processes

Prints one JSON object: for the matched processes ("self") and, separately, for their direct
children ("children": the containers' own pid 1), the count, threads, and the sums of PSS,
PSS_Anon and RSS from /proc/PID/smaps_rollup in KiB. PSS splits each shared page between
every process mapping it, so a sum over N processes of the same binary is their real cost.
"""
import json
import os
import sys


def argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def rollup(pid):
    out = {"pss_kb": 0, "pss_anon_kb": 0, "rss_kb": 0, "threads": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                field = {"Pss": "pss_kb", "Pss_Anon": "pss_anon_kb", "Rss": "rss_kb"}.get(key)
                if field:
                    out[field] = int(rest.split()[0])
        out["threads"] = len(os.listdir(f"/proc/{pid}/task"))
    except (OSError, ValueError):
        return None
    return out


def children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return kids


def total(pids):
    t = {"procs": 0, "pss_kb": 0, "pss_anon_kb": 0, "rss_kb": 0, "threads": 0}
    for pid in pids:
        r = rollup(pid)
        if r is None:
            continue
        t["procs"] += 1
        for k, v in r.items():
            t[k] += v
    return t


def matcher(mode, arg):
    if mode == "shim":
        return lambda a: len(a) > 2 and a[1] == "__shim" and a[2].startswith(arg)
    if mode == "conmon":
        return lambda a: a and os.path.basename(a[0]) == "conmon" and any(arg in x for x in a)
    if mode == "ctrshim":
        return lambda a: a and os.path.basename(a[0]).startswith("containerd-shim") and arg in a
    raise SystemExit(f"unknown mode {mode}")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "pid":
        pids = [int(p) for p in args]
    else:
        match = matcher(mode, args[0])
        me = os.getpid()
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and match(argv(p))]
    extra = [int(p) for p in args[1:]] if mode == "shim" else []
    kids = [k for p in pids for k in children(p)]
    result = total(pids + extra)
    result["children"] = total(kids)
    result["forker"] = total(extra)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
