#!/usr/bin/env python3
"""What moving a process into a cgroup costs on this host (explains `bench/runtime.sh`'s floor).

Every container start moves its first process into the container's cgroup. `runc run` (and Hoist
on cgroup v2) writes its pid to `cgroup.procs`: the kernel takes the global
`cgroup_threadgroup_rwsem` for writing, and a percpu rwsem that was idle first waits for an RCU
grace period (`rcu_sync_enter`); a second write right after finds it already in its slow mode.
On cgroup v1 Hoist's first process moves itself instead, writing `0` (itself) to `tasks`: a
thread that moves only itself takes no threadgroup lock at all.
This times all three, N times, with an idle gap before each. Run as root; it makes and removes
`hoist-cgroup-move-<pid>` under the first hierarchy it finds (v1 `cpu`, else v2 root).

Once any cgroup hierarchy has been mounted with `favordynmods` during this boot, Linux 6.18 and
later lock per thread group for every `cgroup.procs` write until the next boot: the first
write is then as fast as the others, and this host no longer shows the wait.

    bench/cgroup-move.py [N]      (default 20)
"""
import os
import statistics
import subprocess
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
root = "/sys/fs/cgroup/cpu" if os.path.isdir("/sys/fs/cgroup/cpu") else "/sys/fs/cgroup"
v1 = os.path.exists(f"{root}/tasks")
base = f"{root}/hoist-cgroup-move-{os.getpid()}"
os.makedirs(base)
first, second, itself = [], [], []


def moves_itself(d):
    """A forked (single-threaded) child that writes `0` to `tasks` after an idle gap; its ms."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        time.sleep(0.3)  # idle: the rwsem goes back to its fast mode
        t = time.perf_counter()
        with open(f"{d}/tasks", "w") as f:
            f.write("0")
        ms = (time.perf_counter() - t) * 1000
        os.write(w, f"{ms}".encode())
        os._exit(0)
    os.close(w)
    ms = float(os.read(r, 64).decode())
    os.close(r)
    os.waitpid(pid, 0)
    return ms


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
        if v1:
            itself.append(moves_itself(d))
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
if itself:
    print(f"{root}: a process moving itself (v1 `tasks`, `0`) after an idle gap: {q(itself)}")
