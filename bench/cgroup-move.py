#!/usr/bin/env python3
"""What moving a process into a cgroup costs on this host (explains `bench/runtime.sh`'s floor).

Every container start moves its first process into the container's cgroup (Hoist's supervisor
and `runc run` alike) by writing its pid to `cgroup.procs`. The kernel takes the global
`cgroup_threadgroup_rwsem` for writing, and a percpu rwsem that was idle first waits for an RCU
grace period (`rcu_sync_enter`); a second write right after finds it already in its slow mode.
This times both, N times, with an idle gap before each first write. Run as root; it makes and
removes `hoist-cgroup-move-<pid>` under the first hierarchy it finds (v1 `cpu`, else v2 root).

    bench/cgroup-move.py [N]      (default 20)
"""
import os
import statistics
import subprocess
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
root = "/sys/fs/cgroup/cpu" if os.path.isdir("/sys/fs/cgroup/cpu") else "/sys/fs/cgroup"
base = f"{root}/hoist-cgroup-move-{os.getpid()}"
os.makedirs(base)
first, second = [], []
try:
    for i in range(n):
        d = f"{base}/c{i}"
        os.makedirs(d)
        procs = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
        time.sleep(0.3)  # idle: the rwsem goes back to its fast mode
        for p, out in zip(procs, (first, second)):
            t = time.perf_counter()
            with open(f"{d}/cgroup.procs", "w") as f:
                f.write(str(p.pid))
            out.append((time.perf_counter() - t) * 1000)
        for p in procs:
            p.kill()
            p.wait()
finally:
    for i in range(n):
        try:
            os.rmdir(f"{base}/c{i}")
        except OSError:
            pass
    os.rmdir(base)
q = lambda v: f"median {statistics.median(v):.2f} ms, min {min(v):.2f}, max {max(v):.2f}"
print(f"{root}: first write after an idle gap: {q(first)}")
print(f"{root}: a second write right after:    {q(second)}")
