#!/usr/bin/env python3
"""Shutdown tuned for load balancers (standard library only).

On SIGTERM the server stops being ready at once (/readyz 503) but keeps accepting and
serving for shutdown_delay_ms, every reply saying Connection: close, so a balancer's health
checks or Kubernetes' endpoint removal take the replica out before anything is refused; then
it drains and exits 0. SIGINT, or a second signal during the delay, drains at once.

Run by tests/integration/run.sh (same environment as test_server.py).
"""
import http.client
import signal
import sys
import time

from test_server import G3, SLOW, Server, make_png, run_standalone

PNG = make_png(160, 120)


def wait_status(S, path, want, timeout):
    deadline = time.time() + timeout * SLOW
    st = None
    while time.time() < deadline:
        st = S.get(path)[0]
        if st == want:
            return
        time.sleep(0.02)
    raise AssertionError("%s stayed %s, never %d" % (path, st, want))


def t_shutdown_delay(_S):
    delay_ms = int(4000 * SLOW)
    S = Server("--model", "g3=" + G3, "--workers", "1", "--shutdown-delay-ms", str(delay_ms))
    try:
        # a keep-alive connection opened before the signal (a POST: libmicrohttpd closes
        # after a GET that is answered before its end-of-request is read)
        c = S.conn()
        c.request("POST", "/classify", body=PNG, headers={"Content-Type": "image/png"})
        r = c.getresponse()
        r.read()
        assert r.status == 200 and (r.getheader("Connection") or "").lower() != "close"
        sock = c.sock
        assert sock is not None
        t_sig = time.time()
        S.p.send_signal(signal.SIGTERM)
        wait_status(S, "/readyz", 503, 2)
        # the old connection still gets its answer, told to close
        assert c.sock is sock  # the same socket: http.client did not reconnect
        c.request("POST", "/classify", body=PNG, headers={"Content-Type": "image/png"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        assert (r.getheader("Connection") or "").lower() == "close", r.getheaders()
        c.close()
        # new connections are still accepted and served during the delay
        st, h, body = S.post_raw(PNG, ctype="image/png")
        assert st == 200 and body["results"], (st, body)
        assert h.get("connection", "").lower() == "close", h
        assert S.get("/healthz")[0] == 200
        assert S.get("/metrics")[0] == 200
        st, h, _ = S.get("/readyz")
        assert st == 503 and h.get("connection", "").lower() == "close", (st, h)
        still_serving = time.time() - t_sig
        assert S.p.poll() is None, "the server exited during its shutdown delay"
        S.p.wait(30 * SLOW + delay_ms / 1000.0)  # no second signal: that would cut it short
        rc = S.stop()  # already exited: checks the log for sanitizer reports
    finally:
        if S.p.poll() is None:
            S.stop()
    took = time.time() - t_sig
    assert rc == 0, rc
    log = S.logtext()
    assert "not ready; serving %d ms more" % delay_ms in log, log[-2000:]
    assert "drained" in log, log[-2000:]
    # the exit came after the delay, not before (a lower bound only: no upper timing check)
    assert took >= delay_ms / 1000.0 * 0.95, (took, delay_ms)
    assert still_serving < took


def t_second_signal_cuts_delay(_S):
    S = Server("--model", "g3=" + G3, "--workers", "1", "--shutdown-delay-ms", "600000")
    S.p.send_signal(signal.SIGTERM)
    wait_status(S, "/readyz", 503, 2)
    assert S.post_raw(PNG, ctype="image/png")[0] == 200
    S.p.send_signal(signal.SIGTERM)
    rc = S.stop(timeout=60)  # far below the ten-minute delay
    assert rc == 0, rc
    assert "cut short" in S.logtext()


def t_sigint_skips_delay(_S):
    S = Server("--model", "g3=" + G3, "--workers", "1", "--shutdown-delay-ms", "600000")
    rc = S.stop(sig=signal.SIGINT, timeout=60)
    assert rc == 0, rc
    log = S.logtext()
    assert "not ready" not in log and "drained" in log, log[-2000:]


def t_delay_zero_drains_at_once(_S):
    # the old behaviour: readiness 503 and new connections refused together
    S = Server("--model", "g3=" + G3, "--workers", "1", "--shutdown-delay-ms", "0")
    assert S.get("/readyz")[0] == 200
    rc = S.stop(timeout=60)
    assert rc == 0 and "not ready" not in S.logtext()
    try:
        S.get("/readyz")
        raise AssertionError("still accepting after exit")
    except (OSError, http.client.HTTPException):
        pass


TESTS = [t_shutdown_delay, t_second_signal_cuts_delay, t_sigint_skips_delay,
         t_delay_zero_drains_at_once]


def main():
    return run_standalone("shutdown", TESTS)


if __name__ == "__main__":
    sys.exit(main())
