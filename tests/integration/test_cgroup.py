#!/usr/bin/env python3
"""The server sizes itself to its container, checked in real cgroups (standard library only).

A child of this machine's cgroup CPU controller (v1 cpu.cfs_quota_us, or v2 cpu.max where
the unified hierarchy delegates cpu) with a quota of 2, 1 and 0.5 CPUs, and an affinity mask
of one CPU: the server's default worker count must follow (2, 1, 1, 1) and its "limits:" log
line must name the quota it found. Needs root and a writable CPU controller (containers
usually have neither): SKIP otherwise. The unit test tests/unit/test_limits.c covers the
parsing over fake cgroup trees everywhere.

Run by tests/integration/run.sh (same environment as test_server.py).
"""
import os
import re
import subprocess
import time

from test_server import SERVER, SLOW, Skip, free_port, run_standalone


def cpu_cgroup_parent():
    """(directory to create children in, version) or raise Skip."""
    if os.geteuid() != 0:
        raise Skip("not root: cannot create a cgroup")
    v1 = "/sys/fs/cgroup/cpu"
    if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")) and os.access(v1, os.W_OK):
        return v1, 1
    v2 = "/sys/fs/cgroup"
    try:
        with open(os.path.join(v2, "cgroup.subtree_control")) as f:
            if "cpu" in f.read().split() and os.access(v2, os.W_OK):
                return v2, 2
    except OSError:
        pass
    raise Skip("no writable cgroup CPU controller (v1 cpu or v2 cpu.max) here")


def start_in(cg, affinity=None):
    """Starts the server inside cgroup directory cg; returns (workers, limits line)."""
    port = free_port()
    script = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
    p = subprocess.Popen(["sh", "-c", script, "sh", cg, SERVER, "--listen", "127.0.0.1:%d" % port,
                          "--synth", "g3=3:0.5", "--shutdown-delay-ms", "0"],
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, affinity)) if affinity
                         else None)
    lines = []
    deadline = time.time() + 30 * SLOW
    try:
        while time.time() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on .* \((\d+) workers", line)
            if m:
                lim = [x for x in lines if "limits:" in x]
                return int(m.group(1)), lim[0].strip() if lim else ""
        raise AssertionError("no 'listening' line:\n" + "".join(lines))
    finally:
        p.terminate()
        p.wait(30)


def t_workers_follow_cgroup_quota(_S):
    parent, version = cpu_cgroup_parent()
    cg = os.path.join(parent, "sn-test-%d" % os.getpid())
    os.mkdir(cg)
    try:
        ncpu = len(os.sched_getaffinity(0))
        for quota, want in ((2.0, min(2, ncpu)), (1.0, 1), (0.5, 1)):
            if version == 1:
                with open(os.path.join(cg, "cpu.cfs_period_us"), "w") as f:
                    f.write("100000")
                with open(os.path.join(cg, "cpu.cfs_quota_us"), "w") as f:
                    f.write(str(int(quota * 100000)))
            else:
                with open(os.path.join(cg, "cpu.max"), "w") as f:
                    f.write("%d 100000" % int(quota * 100000))
            workers, lim = start_in(cg)
            print("  cgroup v%d quota %.1f CPUs on %d: %d workers; %s"
                  % (version, quota, ncpu, workers, lim), flush=True)
            assert workers == want, (quota, workers, lim)
            assert "quota %.2f CPUs" % quota in lim, lim
        # one CPU in the affinity mask, no quota
        with open(os.path.join(cg, "cpu.cfs_quota_us" if version == 1 else "cpu.max"), "w") as f:
            f.write("-1" if version == 1 else "max 100000")
        workers, lim = start_in(cg, affinity={sorted(os.sched_getaffinity(0))[0]})
        print("  affinity 1 CPU, no quota: %d workers; %s" % (workers, lim), flush=True)
        assert workers == 1 and "1 CPUs in the affinity mask" in lim, lim
    finally:
        for _ in range(50):  # the last process may still be leaving the group
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)


TESTS = [t_workers_follow_cgroup_quota]


def main():
    return run_standalone("cgroup", TESTS)


if __name__ == "__main__":
    raise SystemExit(main())
