#!/usr/bin/env python3
"""`make scale-test`: replicas of shufflenet-server behind HAProxy on loopback, the stand-in
for a cluster (standard library only; HAProxy from Debian; docs/scaling.md).

HAProxy (deploy/haproxy/haproxy.cfg, its servers replaced by loopback ones) health-checks
/readyz of 3 replicas (1 worker each) and takes an open-loop load (shufflenet-loadgen) at
SN_SCALE_LOAD (0.5) of their joint capacity, measured first. Phases:

  steady    3 replicas, nothing happens                      0 failed
  rolling   each replica in turn: SIGTERM (readiness 503, serves through its
            shutdown delay, drains, exits 0), a new one on its port, wait until
            HAProxy has it UP, next                            0 failed
  kill      one replica SIGKILLed mid-load; only what was in flight on it may fail
            (at most its maxconn); HAProxy marks it DOWN within SN_SCALE_DOWN_S (5) s
  after     the next seconds, the killed replica restarted     0 failed
  scale     a 4th replica started and enabled in HAProxy, serving, then SIGTERM and
            removed: 3 -> 4 -> 3                               0 failed

"Failed" is anything but a 2xx: 503s, other statuses, connection errors, timeouts. Prints a
table per phase and a closing "N passed, N failed" line. Every process is a child that is
killed on any exit. Only 127.0.0.1 is used.

With --capacity it measures instead what replicas add up to (`make scale-bench`):
rounds of 1 replica x 2 workers direct, 1 x 2 behind HAProxy and 2 replicas x 1 worker behind
HAProxy, alternated, closed loop; medians and ratios.
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SN_BUILD", "build")
SHARED = os.environ.get("SN_SHARED", "../shared")
SERVER = os.path.join(BUILD, "shufflenet-server")
CLI = os.path.join(BUILD, "shufflenet")
LOADGEN = os.path.join(BUILD, "shufflenet-loadgen")
HAPROXY_CFG = os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")
LOAD = float(os.environ.get("SN_SCALE_LOAD", "0.5"))
DOWN_S = float(os.environ.get("SN_SCALE_DOWN_S", "5"))
MAXCONN = 32  # default-server maxconn in deploy/haproxy/haproxy.cfg (checked below)
TMP = tempfile.mkdtemp(prefix="sn-scale-")
CHILDREN = []

# helpers shared with the integration suite (which wants a models folder named; it is unused)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("SN_MODELS", TMP)
import test_server  # noqa: E402
from test_server import free_port, make_png  # noqa: E402


def say(*a):
    print("scale-test:", *a, flush=True)


def spawn(args, log, **kw):
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kw)
    CHILDREN.append(p)
    return p


def cleanup(*_):
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
    for p in CHILDREN:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


def on_signal(sig, _frame):
    cleanup()
    sys.exit(128 + sig)


def http_get(port, path, timeout=2):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


class Replica:
    """One shufflenet-server process on a fixed loopback port."""

    def __init__(self, name, port, model, workers, extra=()):
        self.name, self.port, self.model, self.workers = name, port, model, workers
        self.extra = list(extra)
        self.p = None
        self.generation = 0

    def start(self):
        self.generation += 1
        log = open(os.path.join(TMP, "%s.%d.log" % (self.name, self.generation)), "w")
        self.p = spawn([SERVER, "--listen", "127.0.0.1:%d" % self.port, "--model",
                        "m=" + self.model, "--workers", str(self.workers)] + self.extra, log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("%s exited %d at start" % (self.name, self.p.returncode))
            if http_get(self.port, "/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError("%s never got ready" % self.name)

    def inflight(self):
        """The server's in-flight gauge, less the scrape itself."""
        st, text = http_get(self.port, "/metrics")
        m = re.search(r"^shufflenet_inflight_requests (\d+)", text, re.M)
        return int(m.group(1)) - 1 if st == 200 and m else None

    def stop(self, timeout=60):
        """SIGTERM and wait for the exit; returns its exit status and how long it took."""
        t0 = time.time()
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout)
        return rc, time.time() - t0


class HAProxy:
    def __init__(self, servers, port, stats_port):
        """servers: [(name, port, enabled)]"""
        with open(HAPROXY_CFG) as f:
            text = f.read()
        m = re.search(r"default-server .*\bmaxconn (\d+)", text)
        assert m and int(m.group(1)) == MAXCONN, "maxconn in %s changed" % HAPROXY_CFG
        lines = ["    server %s 127.0.0.1:%d%s" % (n, p, "" if on else " disabled")
                 for n, p, on in servers]
        text, n = re.subn(r"( *# BEGIN servers\n).*?( *# END servers\n)",
                          lambda mm: mm.group(1) + "\n".join(lines) + "\n" + mm.group(2), text,
                          flags=re.S)
        assert n == 1, "no BEGIN/END servers block in " + HAPROXY_CFG
        text = re.sub(r"\nresolvers dns\n(    .*\n)*", "\n", text)  # no DNS on loopback
        self.cfg = os.path.join(TMP, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(text)
        self.sock = os.path.join(TMP, "haproxy.sock")
        self.port, self.stats_port = port, stats_port
        env = dict(os.environ, SN_HAPROXY_SOCKET=self.sock,
                   SN_HAPROXY_BIND="127.0.0.1:%d" % port,
                   SN_HAPROXY_STATS="127.0.0.1:%d" % stats_port)
        chk = subprocess.run(["haproxy", "-c", "-q", "-f", self.cfg], env=env,
                             capture_output=True, text=True)
        assert chk.returncode == 0, chk.stderr
        self.p = spawn(["haproxy", "-db", "-f", self.cfg],
                       open(os.path.join(TMP, "haproxy.log"), "w"), env=env)
        deadline = time.time() + 10
        while not os.path.exists(self.sock):
            assert self.p.poll() is None and time.time() < deadline, "haproxy did not start"
            time.sleep(0.05)

    def cmd(self, line):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.sock)
        s.sendall(line.encode() + b"\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        s.close()
        return out.decode()

    def stats(self):
        """{server: {field: value}} of backend shufflenet, from `show stat`."""
        rows = self.cmd("show stat").splitlines()
        head = rows[0].lstrip("# ").split(",")
        out = {}
        for r in rows[1:]:
            f = dict(zip(head, r.split(",")))
            for k in ("stot", "scur", "econ", "eresp", "wretr", "wredis"):
                f[k] = int(f.get(k) or 0)
            if f.get("pxname") == "shufflenet" and f.get("svname") not in ("BACKEND", None):
                out[f["svname"]] = f
            if f.get("pxname") == "shufflenet" and f.get("svname") == "BACKEND":
                out["BACKEND"] = f
        return out

    def status(self, server):
        return self.stats()[server]["status"]

    def wait_status(self, server, want, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.status(server).startswith(want):
                return time.time() - t0
            time.sleep(0.05)
        raise AssertionError("HAProxy: %s stayed %s, not %s after %.0f s"
                             % (server, self.status(server), want, timeout))


def counters(stats, server, names=("stot", "econ", "eresp", "wretr", "wredis")):
    f = stats[server]
    return {n: f[n] for n in names}


def retries(before, after):
    """Requests HAProxy sent again (to the same server or, redispatched, to another)."""
    return sum(after[s][k] - before[s][k] for s in after if s in before and s != "BACKEND"
               for k in ("wretr", "wredis"))


class Load:
    """shufflenet-loadgen in the background until stop()."""

    def __init__(self, port, image, rate=None, connections=None, duration=600):
        args = [LOADGEN, "--url", "http://127.0.0.1:%d" % port, "--image", image, "--json",
                "--quiet", "--duration", str(duration)]
        if rate:
            args += ["--rate", str(rate)]
        if connections:
            args += ["--connections", str(connections)]
        self.out = open(os.path.join(TMP, "loadgen.%d.json" % time.monotonic_ns()), "w+")
        self.p = subprocess.Popen(args, stdout=self.out, stderr=subprocess.DEVNULL)
        CHILDREN.append(self.p)
        self.t0 = time.time()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        self.p.wait(60)
        self.out.seek(0)
        return summarize(json.load(self.out))

    def wait(self):
        self.p.wait()
        self.out.seek(0)
        return summarize(json.load(self.out))


def summarize(j):
    st = {int(k): v for k, v in j["status_counts"].items()}
    ok = sum(v for k, v in st.items() if 200 <= k < 300)
    e = j["error_counts"]
    conn = e.get("connect", 0) + e.get("io", 0) + e.get("protocol", 0)
    return {"sent": j["sent"], "ok": ok, "503": st.get(503, 0),
            "other": sum(v for k, v in st.items() if not 200 <= k < 300 and k != 503),
            "conn": conn, "timeout": e.get("timeout", 0), "rps": j["ok_rps"],
            "p50": j["p50_ms"], "p99": j["p99_ms"], "secs": j["elapsed_s"]}


def failed(r):
    return r["sent"] - r["ok"]


def setup_model():
    ckpt = os.path.join(SHARED, "models", "megvii-shufflenet-v1-g3-0.5x.pth.tar")
    model = os.path.join(TMP, "g3.safetensors")
    if os.path.exists(ckpt):
        subprocess.run([CLI, "convert", ckpt, model], check=True, stdout=subprocess.DEVNULL)
        what = "megvii g3 0.5x (trained, converted from ../shared)"
    else:
        subprocess.run([CLI, "synth", "--groups", "3", "--width", "0.5", "-o", model],
                       check=True, stdout=subprocess.DEVNULL)
        what = "SYNTHETIC g3 0.5x (../shared not found)"
    img = os.path.join(SHARED, "images", "opencv_orange.jpg")
    if not os.path.exists(img):
        img = os.path.join(TMP, "gradient.png")
        with open(img, "wb") as f:
            f.write(make_png(400, 300))
    return model, what, img


def cpu_name():
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
    return "%s, %d CPUs" % (m.group(1) if m else "?", len(os.sched_getaffinity(0)))


# ---- the scale test --------------------------------------------------------------------

def scale_test():
    model, what, image = setup_model()
    say("model %s; image %s; %s" % (what, os.path.basename(image), cpu_name()))
    ports = [free_port() for _ in range(4)]
    reps = [Replica("r%d" % (i + 1), ports[i], model, 1) for i in range(4)]
    for r in reps[:3]:
        r.start()
    hap = HAProxy([(r.name, r.port, i < 3) for i, r in enumerate(reps)], free_port(),
                  free_port())
    for r in reps[:3]:
        hap.wait_status(r.name, "UP", 10)
    checks = []  # (name, ok, detail)
    rows = []

    def check(name, ok, detail):
        checks.append((name, ok, detail))
        say("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    # capacity of the three, closed loop through HAProxy (after a short warm-up)
    Load(hap.port, image, connections=8, duration=1).wait()
    cap = Load(hap.port, image, connections=24, duration=4).wait()
    rate = max(10, round(cap["ok"] / cap["secs"] * LOAD))
    say("capacity of 3 replicas x 1 worker through HAProxy: %.0f req/s; open loop at %d req/s "
        "(%.0f%%)" % (cap["ok"] / cap["secs"], rate, LOAD * 100))

    def phase(name, fn):
        before = hap.stats()
        load = Load(hap.port, image, rate=rate)
        note = fn() or ""
        res = load.stop()
        after = hap.stats()
        res["retries"] = retries(before, after)
        res.update(name=name, note=note)
        rows.append(res)
        return res

    r = phase("steady", lambda: time.sleep(5))
    check("steady: 0 failed", failed(r) == 0, "%d sent, %d failed" % (r["sent"], failed(r)))

    def rolling():
        notes = []
        for rep in reps[:3]:
            t0 = time.time()
            down = None
            rep.p.send_signal(signal.SIGTERM)
            try:
                down = hap.wait_status(rep.name, "DOWN", 5)
            except AssertionError as e:
                notes.append(str(e))
            rc = rep.p.wait(60)
            gone = time.time() - t0
            rep.start()
            up = hap.wait_status(rep.name, "UP", 10)
            notes.append("%s: DOWN after %.1fs, exit %d after %.1fs, new one UP %.1fs later"
                         % (rep.name, down if down is not None else -1, rc, gone, up))
            check("rolling: %s exits 0 and HAProxy had it DOWN before it stopped serving"
                  % rep.name, rc == 0 and down is not None and down < gone, notes[-1])
        return "; ".join(notes)

    r = phase("rolling", rolling)
    check("rolling restart: 0 failed, 0 connection errors", failed(r) == 0,
          "%d sent, %d answered 2xx" % (r["sent"], r["ok"]))

    # kill: the load keeps going; the victim dies with whatever it holds
    victim = reps[1]
    before = hap.stats()
    load = Load(hap.port, image, rate=rate)
    time.sleep(2)
    # kill it while it holds a request, if one comes within 3 s (at half load a replica is
    # idle more often than not)
    deadline = time.time() + 3
    while True:
        inflight = victim.inflight()
        if (inflight or 0) > 0 or time.time() > deadline:
            break
    hap_cur = hap.stats()[victim.name]["scur"]
    t_kill = time.time()
    victim.p.kill()
    victim.p.wait()
    try:
        down = hap.wait_status(victim.name, "DOWN", DOWN_S)
    except AssertionError:
        down = None
    time.sleep(0.5)
    r = load.stop()
    after = hap.stats()
    vc = {k: v - counters(before, victim.name)[k] for k, v in counters(after, victim.name).items()}
    r.update(name="kill", retries=retries(before, after),
             note="in flight on the victim just before SIGKILL: %s by its gauge, %d "
                  "connections by HAProxy; on it HAProxy counted %d response errors, %d connection errors, %d "
                  "retries, %d redispatched; DOWN %.1fs after the kill"
                  % (inflight, hap_cur, vc["eresp"], vc["econ"], vc["wretr"], vc["wredis"],
                     down if down is not None else -1))
    rows.append(r)
    check("kill: HAProxy marks the killed replica DOWN within %.0f s" % DOWN_S,
          down is not None, "%.1f s" % (down if down is not None else time.time() - t_kill))
    check("kill: at most what was in flight on it failed (<= maxconn %d)" % MAXCONN,
          failed(r) <= MAXCONN, "%d failed; %s" % (failed(r), r["note"]))

    def after_kill():
        time.sleep(3)
        victim.start()
        up = hap.wait_status(victim.name, "UP", 10)
        time.sleep(2)
        return "killed replica restarted, UP %.1fs after it was ready" % up

    r = phase("after kill", after_kill)
    check("after the kill: 0 failed", failed(r) == 0, "%d sent, %d failed" % (r["sent"],
                                                                            failed(r)))

    def scale():
        r4 = reps[3]
        r4.start()
        hap.cmd("set server shufflenet/%s state ready" % r4.name)
        up = hap.wait_status(r4.name, "UP", 10)
        n0 = counters(hap.stats(), r4.name)["stot"]
        time.sleep(5)
        served = counters(hap.stats(), r4.name)["stot"] - n0
        rc, took = r4.stop()
        hap.cmd("set server shufflenet/%s state maint" % r4.name)
        time.sleep(2)
        check("scale: the 4th replica took traffic and exited 0", served > 0 and rc == 0,
              "%d requests in 5 s, exit %d" % (served, rc))
        return ("r4 UP %.1fs after start; served %d requests in 5 s; SIGTERM -> exit %d "
                "after %.1fs" % (up, served, rc, took))

    r = phase("scale 3-4-3", scale)
    check("scale 3 -> 4 -> 3: 0 failed", failed(r) == 0, "%d sent, %d failed" % (r["sent"],
                                                                                 failed(r)))

    # the rest stop cleanly
    for rep in reps[:3]:
        rc, _ = rep.stop()
        check("%s exits 0 on SIGTERM" % rep.name, rc == 0, "exit %d" % rc)

    print()
    print("| phase | sent | answered 2xx | 503 | other failed | connection errors | timeouts "
          "| HAProxy retried | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %d | %d | %d | %d | %d | %d | %d | %.1f | %.1f |"
              % (r["name"], r["sent"], r["ok"], r["503"], r["other"], r["conn"], r["timeout"],
                 r["retries"], r["p50"], r["p99"]))
    print()
    for r in rows:
        if r["note"]:
            print("%s: %s" % (r["name"], r["note"]))
    print()
    passed = sum(1 for c in checks if c[1])
    print("scale-test: %d passed, %d failed" % (passed, len(checks) - passed))
    return 0 if passed == len(checks) else 1


# ---- capacity: what replicas add up to --------------------------------------------------

def capacity():
    rounds = int(os.environ.get("SN_SCALE_ROUNDS", "5"))
    secs = float(os.environ.get("SN_SCALE_SECONDS", "5"))
    conns = int(os.environ.get("SN_SCALE_CONNECTIONS", "16"))
    model, what, image = setup_model()
    say("model %s; image %s; %s; %d rounds x %.0f s, closed loop %d connections"
        % (what, os.path.basename(image), cpu_name(), rounds, secs, conns))
    setups = {"1x2 direct": (1, 2, False), "1x2 HAProxy": (1, 2, True),
              "2x1 HAProxy": (2, 1, True)}
    got = {k: [] for k in setups}
    for rnd in range(rounds):
        for name, (n, w, proxied) in setups.items():
            reps = [Replica("c%d" % i, free_port(), model, w) for i in range(n)]
            for r in reps:
                r.start()
            hap = None
            port = reps[0].port
            if proxied:
                hap = HAProxy([(r.name, r.port, True) for r in reps], free_port(), free_port())
                for r in reps:
                    hap.wait_status(r.name, "UP", 10)
                port = hap.port
            Load(port, image, connections=conns, duration=1).wait()
            res = Load(port, image, connections=conns, duration=secs).wait()
            rps = res["ok"] / res["secs"]
            got[name].append(rps)
            say("round %d %-12s %7.1f req/s (p50 %.1f ms)" % (rnd + 1, name, rps, res["p50"]))
            for r in reps:
                r.p.send_signal(signal.SIGINT)
                r.p.wait(30)
            if hap:
                hap.p.kill()
                hap.p.wait()
                os.unlink(hap.sock)
    med = {k: statistics.median(v) for k, v in got.items()}
    print()
    print("| setup | median req/s | rounds |")
    print("|---|---:|---|")
    for k, v in got.items():
        print("| %s | %.1f | %s |" % (k, med[k], " ".join("%.0f" % x for x in v)))
    base = got["1x2 direct"]
    # ratios within each round (the three ran back to back), then their median: the
    # machine's speed drifts between rounds far more than within one
    r1 = [a / b for a, b in zip(got["1x2 HAProxy"], base)]
    r2 = [a / b for a, b in zip(got["2x1 HAProxy"], base)]
    print()
    print("per-round ratios to 1 replica x 2 workers direct, median (min-max): 1x2 behind "
          "HAProxy %.3f (%.2f-%.2f), 2x1 behind HAProxy %.3f (%.2f-%.2f)"
          % (statistics.median(r1), min(r1), max(r1), statistics.median(r2), min(r2), max(r2)))
    return 0


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for b in (SERVER, CLI, LOADGEN):
        if not os.access(b, os.X_OK):
            sys.exit("scale-test: %s is not built (make)" % b)
    if subprocess.run(["sh", "-c", "command -v haproxy"], stdout=subprocess.DEVNULL).returncode:
        sys.exit("scale-test: haproxy not installed (Debian package haproxy; make deps)")
    try:
        return capacity() if "--capacity" in sys.argv[1:] else scale_test()
    finally:
        cleanup()
        subprocess.run(["rm", "-rf", TMP, test_server.TMP])


if __name__ == "__main__":
    sys.exit(main())
