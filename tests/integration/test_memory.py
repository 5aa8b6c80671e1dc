#!/usr/bin/env python3
"""test_memory.py - the memory budget under a flood of large uploads (issue 15), and the
preprocessing mode switch.

A server with `--memory-budget 256M` gets N (200) concurrent uploads of a 14 MB image (a real
2200x2100 PNG stored without compression, made here) over loopback, all started together.
Checked: every request is answered 200 or 503 (no connection reset by the server, no other
status), some are refused for memory (rejected{reason="memory"}), peak RSS stays under
256 MiB + 64 MiB, and 10 s after the burst RSS is within 20% of its value before it. The RSS
numbers are printed. Under sanitizers (SN_SLOW > 1) the flood is smaller and the RSS limits
are reported, not asserted (shadow memory and quarantine are not the server's). Bounded: the
whole test takes well under 2 minutes. Traffic goes to 127.0.0.1 only.
"""
import json
import os
import subprocess
import sys
import threading
import time

from flood import big_png, flood
from test_server import G3, SERVER, SLOW, Server, metric, run_one

BUDGET_MIB = 256
N = int(os.environ.get("SN_FLOOD", "200" if SLOW == 1 else "40"))


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def t_flood_of_large_uploads():
    body = big_png()
    S = Server("--model", "g3=" + G3, "--workers", "2", "--memory-budget", "%dM" % BUDGET_MIB,
               "--request-timeout-ms", str(int(60000 * SLOW)))
    try:
        pid = S.p.pid
        small = big_png(320, 240)
        # Warm up with concurrent requests, so that full batches have touched the workers'
        # engine workspaces (sized for max_batch) before "before" is read: those pages are
        # the service's steady state, not what a burst leaves behind.
        for _ in range(4):
            counts, _ = flood("127.0.0.1", S.port, 16, small, timeout=60 * SLOW)
            assert counts == {200: 16}, counts
        time.sleep(1)
        before = rss_kib(pid)
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_kib(pid))
                except OSError:
                    return
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        counts, burst_s = flood("127.0.0.1", S.port, N, body, timeout=90 * SLOW)
        done.set()
        sampler.join()
        hwm = rss_kib(pid, "VmHWM")
        time.sleep(10)
        after = rss_kib(pid)
        m = S.settled_metrics()
        mem_rej = metric(m, "shufflenet_rejected_total", reason="memory") or 0
        used = metric(m, "shufflenet_memory_budget_used_bytes")
        print("  %d uploads of %.1f MB, budget %d MiB: statuses %s in %.1f s; "
              "rejected{reason=memory} %d" % (N, len(body) / 1e6, BUDGET_MIB, counts, burst_s,
                                               mem_rej))
        print("  RSS before %.1f MiB, peak %.1f MiB (sampled every 10 ms; VmHWM %.1f MiB), "
              "10 s after %.1f MiB (%+.1f%%); budget held after: %s bytes"
              % (before / 1024, peak[0] / 1024, hwm / 1024, after / 1024,
                 100.0 * (after - before) / before, used))
        bad = {k: v for k, v in counts.items() if k not in (200, 503)}
        assert not bad, "answers other than 200/503 (resets, errors): %s" % bad
        assert counts.get(200, 0) > 0, "nothing was classified"
        assert counts.get(503, 0) > 0 and mem_rej > 0, "the budget never refused anything"
        assert used == 0, "budget still holds %s bytes after the burst" % used
        if SLOW == 1:
            assert peak[0] / 1024 <= BUDGET_MIB + 64, "peak RSS %.1f MiB" % (peak[0] / 1024)
            assert after <= before * 1.2, "RSS %.1f MiB 10 s after, %.1f before" % (
                after / 1024, before / 1024)
        st, _, _ = S.post_raw(small, ctype="image/png")
        assert st == 200, "not serving after the burst: %d" % st
    finally:
        S.stop()


def t_exact_mode_and_bad_mode():
    """--preprocess exact is served and shown; a bad mode stops start-up naming the key."""
    S = Server("--model", "g3=" + G3, "--workers", "1", "--preprocess", "exact")
    try:
        st, _, b = S.get("/v1/models/g3")
        assert st == 200 and json.loads(b)["preprocess_mode"] == "exact", b
        st, _, _ = S.post_raw(big_png(320, 240), ctype="image/png")
        assert st == 200, st
    finally:
        S.stop()
    p = subprocess.run([SERVER, "--preprocess", "approximate", "--model", "g3=" + G3],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and '"preprocess"' in p.stderr, (p.returncode, p.stderr)


def t_v2_json_tree_within_budget():
    """A v2 JSON FP32 request is reserved against the budget before jansson builds its tree
    (64 bytes a value): with --memory-budget 32M a batch of 1 (150,528 values, ~9.6 MB) is
    served, a batch of 4 (~38.5 MB) is refused 503 overloaded naming the budget and counted
    as rejected{reason="memory"}, and nothing stays reserved after either."""
    S = Server("--model", "g3=" + G3, "--workers", "1", "--memory-budget", "32M")

    def json_fp32(n):
        inp = {"name": "input", "datatype": "FP32", "shape": [n, 3, 224, 224],
               "data": [0.5] * (n * 3 * 224 * 224)}
        body = json.dumps({"inputs": [inp]}, separators=(",", ":")).encode()
        return S.request("POST", "/v2/models/g3/infer", body,
                         {"Content-Type": "application/json"})
    try:
        st1, _, b1 = json_fp32(1)
        st4, h4, b4 = json_fp32(4)
        m = S.settled_metrics()
    finally:
        S.stop()
    print("  v2 JSON FP32 under a 32 MiB budget: batch 1 -> %d, batch 4 -> %d %s" %
          (st1, st4, b4[:160].decode(errors="replace")), flush=True)
    assert st1 == 200, (st1, b1[:200])
    assert st4 == 503 and h4.get("retry-after"), (st4, h4)
    assert "memory budget" in json.loads(b4)["error"], b4
    assert metric(m, "shufflenet_rejected_total", reason="memory") == 1, m
    assert metric(m, "shufflenet_memory_budget_used_bytes") == 0


def main():
    total = [0, 0, 0]
    for t in (t_exact_mode_and_bad_mode, t_v2_json_tree_within_budget, t_flood_of_large_uploads):
        r = run_one(t.__name__, t)
        total = [a + b for a, b in zip(total, r)]
    print("memory: %d passed, %d failed, %d skipped" % tuple(total))
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main())
