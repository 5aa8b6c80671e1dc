#!/usr/bin/env python3
"""Integration suite for shufflenet-server: the real binary on a free 127.0.0.1 port.

Standard library only. Environment: SN_BUILD (binaries), SN_SHARED (../shared),
SN_MODELS (a directory with megvii-g3-0.5x / megvii-g8-0.5x .safetensors, or synthetic
stand-ins made by run.sh; SN_TRAINED=1 when they are the trained ones).
Prints one line per test and a closing "N passed, N failed, N skipped" line.
"""
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

BUILD = os.environ.get("SN_BUILD", "build")
SHARED = os.environ.get("SN_SHARED", "../shared")
MODELS = os.environ["SN_MODELS"]
TRAINED = os.environ.get("SN_TRAINED") == "1"
IMAGES = os.path.join(SHARED, "images")
HAVE_SHARED = os.path.isdir(IMAGES)
SERVER = os.path.join(BUILD, "shufflenet-server")
CLI = os.path.join(BUILD, "shufflenet")
G3 = os.path.join(MODELS, "megvii-g3-0.5x.safetensors")
G8 = os.path.join(MODELS, "megvii-g8-0.5x.safetensors")
SLOW = float(os.environ.get("SN_SLOW", "1"))  # time multiplier (sanitizers)
TMP = tempfile.mkdtemp(prefix="sn-it-")


class Skip(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, *args, env=None):
        self.port = free_port()
        self.log = open(os.path.join(TMP, "server-%d.log" % self.port), "w+")
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:%d" % self.port] + list(args),
            stdout=self.log, stderr=self.log, env=e)
        deadline = time.time() + 60 * SLOW
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("server exited %d:\n%s" % (self.p.returncode, self.logtext()))
            try:
                st, _, _ = self.get("/healthz")
                if st == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not come up")

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def post_raw(self, data, query="", ctype="application/octet-stream", path="/classify"):
        st, h, body = self.request("POST", path + query, data, {"Content-Type": ctype})
        return st, h, json.loads(body)

    def post_multi(self, files, query="", fields=None):
        body, ctype = multipart(files, fields)
        st, h, data = self.request("POST", "/classify" + query, body, {"Content-Type": ctype})
        return st, h, json.loads(data)

    def metrics(self):
        st, _, data = self.get("/metrics")
        assert st == 200
        return data.decode()

    def settled_metrics(self, timeout=10):
        """/metrics once every earlier request has been completed server-side (a client can
        read its reply before the server's completion callback has counted it)."""
        deadline = time.time() + timeout * SLOW
        while True:
            m = self.metrics()
            if metric(m, "shufflenet_inflight_requests") == 1 or time.time() > deadline:
                return m
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("server did not exit after signal")
        text = self.logtext()
        for mark in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                     "ERROR: LeakSanitizer"):
            assert mark not in text, "sanitizer report in the server log:\n" + text[-6000:]
        return self.p.returncode


def multipart(files, fields=None):
    b = "sn%016x" % random.getrandbits(64)
    out = []
    for name, value in (fields or {}).items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (b, name, value)).encode())
    for fname, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" % (b, fname)).encode())
        out.append(data + b"\r\n")
    out.append(("--%s--\r\n" % b).encode())
    return b"".join(out), "multipart/form-data; boundary=" + b


def make_png(w=320, h=240):
    """A smooth RGB gradient PNG, for tests that need some valid image without ../shared."""
    import struct
    import zlib
    rows = b"".join(b"\0" + bytes((x * 255 // w, y * 255 // h, (x + y) % 256)[c]
                                   for x in range(w) for c in range(3)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def sample(name="skimage_coffee.png"):
    """A shared image when ../shared is there, else a generated PNG."""
    return image(name) if HAVE_SHARED else make_png()


def image(name):
    if not HAVE_SHARED:
        raise Skip("../shared not found")
    with open(os.path.join(IMAGES, name), "rb") as f:
        return f.read()


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, _, val = line.rpartition(" ")
        if key != name and not key.startswith(name + "{"):
            continue
        ls = {}
        if "{" in key:
            for kv in key[key.index("{") + 1:-1].split(","):
                k, _, v = kv.partition("=")
                ls[k] = v.strip('"')
        if all(ls.get(k) == str(v) for k, v in labels.items()):
            total += float(val)
            found = True
    return total if found else None


def expect_error(res, status, code):
    st, h, body = res
    assert st == status, "expected %d %s, got %d %s" % (status, code, st, body)
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    return h


def ok_topk(res):
    st, _, body = res
    assert st == 200, (st, body)
    return body


# Images of ../shared/images with the HTTP answer each must get.
EDGE_STATUS = {"skimage_truncated.jpg": (400, "invalid_image"),
               "edge_bomb_12000x12000_gray.jpg": (413, "image_too_large")}


def shared_images():
    if not HAVE_SHARED:
        raise Skip("../shared not found")
    return sorted(f for f in os.listdir(IMAGES) if f.endswith((".jpg", ".png")))


def cli_topk(model, files, k=5):
    out = subprocess.run([CLI, "classify", "--json", "--top-k", str(k), "--model", model] + files,
                         capture_output=True, text=True, timeout=600 * SLOW)
    assert out.returncode == 0, out.stderr
    return {os.path.basename(r["file"]): r["top_k"] for r in json.loads(out.stdout)}


# ---- tests --------------------------------------------------------------------------------

def t_every_shared_image_raw_and_multipart(S):
    # Every image in ../shared/images through the server (raw and multipart) and through
    # `shufflenet classify --json`: both call sn_input_from_bytes and the same engine, so
    # the top-5 and the scores (as printed, 7 significant digits) are identical.
    names = shared_images()
    good = [n for n in names if n not in EDGE_STATUS]
    cli = cli_topk(G3, [os.path.join(IMAGES, n) for n in good])
    for n in names:
        data = image(n)
        ctype = "image/png" if n.endswith(".png") else "image/jpeg"
        raw = S.post_raw(data, "?top_k=5", ctype)
        multi = S.post_multi([(n, data)], "?top_k=5")
        if n in EDGE_STATUS:
            expect_error(raw, *EDGE_STATUS[n])
            expect_error(multi, *EDGE_STATUS[n])
            continue
        for res, fname in ((raw, None), (multi, n)):
            body = ok_topk(res)
            assert body["model"] == "g3"
            assert body["weights"] == ("trained" if TRAINED else "synthetic")
            r = body["results"][0]
            assert r["filename"] == fname
            assert r["width"] > 0 and r["height"] > 0
            assert len(r["top_k"]) == 5
            got = [t["index"] for t in r["top_k"]]
            want = [t["index"] for t in cli[n]]
            assert got == want, "%s: HTTP %s != CLI %s" % (n, got, want)
            for a, b in zip(r["top_k"], cli[n]):
                assert a["score"] == b["score"], "%s: HTTP score %r != CLI %r" % (n, a, b)
                assert a["wnid"] == b["wnid"] and a["label"] == b["label"]
            for k in ("decode", "queue", "inference", "total"):
                assert body["timing_ms"][k] >= 0


def t_expected_classes(S):
    if not TRAINED:
        raise Skip("trained megvii weights not available (synthetic models)")
    chelsea = ok_topk(S.post_raw(image("skimage_chelsea.png")))["results"][0]["top_k"]
    assert 281 <= chelsea[0]["index"] <= 285, chelsea[0]
    coffee = ok_topk(S.post_multi([("c.png", image("skimage_coffee.png"))]))
    assert coffee["results"][0]["top_k"][0]["label"] == "espresso"
    g8 = ok_topk(S.post_raw(image("skimage_coffee.png"), path="/v1/models/g8/classify"))
    assert g8["model"] == "g8" and g8["results"][0]["top_k"][0]["index"] == 967


def t_several_files_in_one_request(S):
    names = ["skimage_coffee.png", "skimage_chelsea.png", "qengineering_cat.jpg"]
    body = ok_topk(S.post_multi([(n, image(n)) for n in names], "?top_k=3",
                                fields={"note": "plain form fields are ignored"}))
    assert [r["filename"] for r in body["results"]] == names
    for n, r in zip(names, body["results"]):
        single = ok_topk(S.post_raw(image(n), "?top_k=3"))["results"][0]
        assert [t["index"] for t in r["top_k"]] == [t["index"] for t in single["top_k"]]


def t_curl_like_readme(S):
    out = subprocess.run(["curl", "-s", "-F", "image=@" + os.path.join(IMAGES, "skimage_coffee.png")
                          if HAVE_SHARED else "", "127.0.0.1:%d/classify" % S.port],
                         capture_output=True, text=True, timeout=60 * SLOW)
    if not HAVE_SHARED:
        raise Skip("../shared not found")
    body = json.loads(out.stdout)
    assert body["results"][0]["filename"] == "skimage_coffee.png"
    if TRAINED:
        assert body["results"][0]["top_k"][0]["label"] == "espresso"


def broken_huffman_jpeg():
    """A real JPEG whose first DHT segment has its code counts overflowing."""
    data = bytearray(image("qengineering_cat.jpg"))
    i = data.find(b"\xff\xc4")
    assert i > 0
    for j in range(i + 5, i + 5 + 16):  # the 16 code-length counts
        data[j] = 0xFF
    return bytes(data)


def t_error_codes(S):
    png = sample()
    expect_error(S.post_raw(b""), 400, "invalid_image")
    expect_error(S.post_raw(png[: len(png) // 2], ctype="image/png"), 400, "invalid_image")
    expect_error(S.post_raw(bytes(random.Random(1).getrandbits(8) for _ in range(4096))), 415,
                 "unsupported_media_type")
    expect_error(S.post_raw(b"\xff\xd8\xff" + bytes(random.Random(2).getrandbits(8)
                                                   for _ in range(4096))), 400, "invalid_image")
    if HAVE_SHARED:
        expect_error(S.post_raw(image("skimage_truncated.jpg")), 400, "invalid_image")
        expect_error(S.post_raw(broken_huffman_jpeg(), ctype="image/jpeg"), 400, "invalid_image")
        expect_error(S.post_raw(image("edge_bomb_12000x12000_gray.jpg")), 413, "image_too_large")
    else:
        print("SKIP: ../shared not found (truncated/Huffman/bomb JPEG cases)")
    expect_error(S.post_raw(b"GIF89a\x01\x00\x01\x00\x80\x00\x00", ctype="image/gif"), 415,
                 "unsupported_media_type")
    expect_error(S.post_raw(b"hello, world\n", ctype="text/plain"), 415, "unsupported_media_type")
    for q in ("?top_k=0", "?top_k=1001", "?top_k=abc", "?top_k="):
        expect_error(S.post_raw(png, q), 400, "bad_request")
    body, ctype = multipart([("a.png", png)])
    for bad in (body[:-10], body.replace(b"\r\n\r\n", b"\r\n", 1), b"junk"):
        expect_error(S.post_raw(bad, ctype=ctype), 400, "bad_request")
    expect_error(S.post_raw(png, ctype="multipart/form-data"), 400, "bad_request")
    fields_only, ctype = multipart([], {"top_k": "3"})
    expect_error(S.post_raw(fields_only, ctype=ctype), 400, "bad_request")
    expect_error(S.post_raw(png, "?model=nope"), 404, "model_not_found")
    expect_error(S.post_raw(png, path="/v1/models/nope/classify"), 404, "model_not_found")
    st, _, b = S.get("/v1/models/nope")
    assert st == 404 and json.loads(b)["error"]["code"] == "model_not_found"
    for path in ("/", "/nothing", "/v1/models/g3/classify/x", "/classify/x"):
        st, _, b = S.get(path)
        assert st == 404 and json.loads(b)["error"]["code"] == "not_found", (path, st, b)
    st, h, b = S.get("/classify")
    assert st == 405 and h["allow"] == "POST", (st, h)
    st, h, b = S.request("DELETE", "/healthz")
    assert st == 405 and "GET" in h["allow"]
    st, h, b = S.request("PUT", "/v1/models/g3/classify", png)
    assert st == 405 and h["allow"] == "POST"
    assert "500 " not in S.logtext()


def t_payload_too_large(S):
    """body_limit 1M on a second server: Content-Length over it is refused before reading,
    a chunked body is cut off while it streams."""
    S2 = Server("--model", "g3=" + G3, "--body-limit", "1M", "--workers", "1")
    try:
        # only the headers are sent: the 413 comes back without the body being read
        s = socket.create_connection(("127.0.0.1", S2.port), timeout=30 * SLOW)
        s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: %d\r\n\r\n" % (2 << 20))
        reply = b""
        while b"}}" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        s.close()
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), reply
        assert json.loads(body)["error"]["code"] == "payload_too_large"

        def chunks():
            for _ in range(64):
                yield b"\0" * 65536
        c = S2.conn()
        c.request("POST", "/classify", body=chunks(), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        data = json.loads(r.read())
        c.close()
        assert r.status == 413 and data["error"]["code"] == "payload_too_large"
        ok_topk(S2.post_raw(sample()))  # a normal upload still works
    finally:
        assert S2.stop() == 0


def t_models_and_probes(S):
    st, _, b = S.get("/v1/models")
    j = json.loads(b)
    assert st == 200 and j["default"] == "g3"
    names = [m["name"] for m in j["models"]]
    assert names == ["g3", "g8"], names
    st, _, b = S.get("/v1/models/g8")
    m = json.loads(b)
    assert st == 200 and m["groups"] == 8 and m["macs"] > 0 and m["params"] > 0
    assert len(m["sha256"]) == 64 and m["weights"] in ("trained", "synthetic")
    assert m["batching"]["max_batch"] >= 1 and "preprocess" in m
    # the preprocessing mode (docs/request-path.md): fast unless configured
    assert m["preprocess_mode"] == "fast" and m["preprocess"]["mode"] == "fast", m
    assert S.get("/healthz")[0] == 200
    assert S.get("/readyz")[0] == 200


def t_config_errors(S):
    bad = os.path.join(TMP, "bad.json")
    cases = [('{"max_batch": 0}', "max_batch"), ('{"workers": "x"}', "workers"),
             ('{"nonsense": 1}', "nonsense"), ('{"models": {"a": {}}}', "models.a"),
             ('{"log_format": "xml"}', "log_format"), ('{"listen": "nowhere"}', "listen"),
             ('{"default_model": "zz"}', "default_model"), ("{", "bad.json")]
    for text, key in cases:
        with open(bad, "w") as f:
            f.write(text)
        out = subprocess.run([SERVER, "--config", bad], capture_output=True, text=True,
                             timeout=30 * SLOW)
        assert out.returncode == 2 and key in out.stderr, (text, out.returncode, out.stderr)
    out = subprocess.run([SERVER, "--workers", "0"], capture_output=True, text=True)
    assert out.returncode == 2 and "workers" in out.stderr
    out = subprocess.run([SERVER], capture_output=True, text=True,
                         env=dict(os.environ, SHUFFLENET_QUEUE_SIZE="-3"))
    assert out.returncode == 2 and "SHUFFLENET_QUEUE_SIZE" in out.stderr, out.stderr
    out = subprocess.run([SERVER, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for key in ("--listen", "--model", "--synth", "--default-model", "--workers", "--max-batch",
                "--max-batch-delay-us", "--queue-size", "--request-timeout-ms",
                "--drain-timeout-ms", "--body-limit", "--max-pixels", "--log-format",
                "--config", "SHUFFLENET_WORKERS"):
        assert key in out.stdout, key


def t_model_flag_replaces_default(S):
    """--model replaces the configured models, and with them the config file's default
    (config/shufflenet-server.json names "g3"); an explicit --default-model still wins."""
    S2 = Server("--model", "mine=" + G3, "--workers", "1")
    try:
        st, _, body = S2.post_raw(sample())
        assert st == 200 and body["model"] == "mine", (st, body)
    finally:
        assert S2.stop() == 0
    out = subprocess.run([SERVER, "--model", "mine=" + G3, "--default-model", "zz"],
                         capture_output=True, text=True, timeout=30 * SLOW)
    assert out.returncode == 2 and "default_model" in out.stderr, out.stderr


def t_json_access_log(S):
    S2 = Server("--model", "g3=" + G3, "--log-format", "json", "--workers", "1")
    try:
        S2.post_raw(sample())
        S2.get("/nothing")
    finally:
        assert S2.stop() == 0
    lines = [json.loads(l) for l in S2.logtext().splitlines() if l.startswith("{")]
    assert any(l["path"] == "/classify" and l["status"] == 200 and l["model"] == "g3"
               and l["bytes"] > 0 for l in lines), lines
    assert any(l["path"] == "/nothing" and l["status"] == 404 for l in lines)


def hold_worker(S2, seconds):
    """Start a g3 request that the only worker takes and then waits on for the rest of its
    batch (max_batch 2, a long max_batch_delay): meanwhile g8 requests stay queued."""
    t = threading.Thread(target=lambda: S2.post_raw(sample()))
    t.start()
    time.sleep(min(0.5, seconds / 4) * SLOW)
    return t


def held_server(*extra):
    delay_us = str(int(min(3e6 * SLOW, 1e7)))  # long enough under sanitizers too
    return Server("--model", "g3=" + G3, "--model", "g8=" + G8, "--workers", "1",
                  "--max-batch", "2", "--max-batch-delay-us", delay_us, "--queue-size", "2",
                  *extra)


def post_g8(S2, data):
    return S2.post_raw(data, path="/v1/models/g8/classify")


def t_overload(_S):
    S2 = held_server()
    try:
        holder = hold_worker(S2, 3)
        out = [None] * 10

        def one(i):
            try:
                out[i] = post_g8(S2, sample())
            except Exception as e:  # noqa: BLE001 - every outcome is recorded
                out[i] = (None, None, e)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        holder.join()
        m = S2.settled_metrics()
    finally:
        assert S2.stop() == 0
    codes = [r[0] for r in out]
    assert None not in codes, [r[2] for r in out if r[0] is None][:3]
    assert codes.count(200) == 2 and codes.count(503) == 8, codes
    for st, h, body in out:
        if st == 503:
            assert h.get("retry-after") == "1" and body["error"]["code"] == "overloaded"
    assert metric(m, "shufflenet_requests_total", model="g8", code="200") == 2
    assert metric(m, "shufflenet_requests_total", model="g8", code="503") == 8
    assert metric(m, "shufflenet_requests_total", model="g8") == 10
    assert metric(m, "shufflenet_requests_total", model="g3") == 1
    assert metric(m, "shufflenet_rejected_total", reason="overloaded") == 8
    assert metric(m, "shufflenet_images_total") == 3
    assert metric(m, "shufflenet_request_duration_seconds_count", model="g8") == 10
    assert metric(m, "shufflenet_queue_depth") == 0
    assert metric(m, "shufflenet_inflight_requests") == 1  # the scrape itself


def t_timeout_504(_S):
    S2 = held_server("--request-timeout-ms", "300")
    try:
        holder = hold_worker(S2, 3)
        res = [post_g8(S2, sample()) for _ in range(2)]  # each waits 300 ms, then 504
        holder.join()
        m = S2.settled_metrics()
    finally:
        assert S2.stop() == 0
    for st, _, body in res:
        assert st == 504 and body["error"]["code"] == "timeout", (st, body)
    assert metric(m, "shufflenet_rejected_total", reason="timeout") == 2
    assert metric(m, "shufflenet_images_total", model="g8") == 0  # never run
    assert metric(m, "shufflenet_requests_total", model="g8", code="504") == 2


def t_disconnect_frees_slot(_S):
    S2 = held_server("--request-timeout-ms", "60000")
    try:
        holder = hold_worker(S2, 3)
        data = sample()
        socks = []
        for _ in range(2):  # fill g8's queue, then hang up
            s = socket.create_connection(("127.0.0.1", S2.port))
            s.sendall(b"POST /v1/models/g8/classify HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(data) + data)
            socks.append(s)
        time.sleep(0.3 * SLOW)
        for s in socks:
            s.close()
        time.sleep(0.3 * SLOW)
        m = S2.metrics()
        later = []  # these must be admitted: the slots were freed
        ts = [threading.Thread(target=lambda: later.append(post_g8(S2, data))) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        holder.join()
    finally:
        assert S2.stop() == 0
    assert metric(m, "shufflenet_rejected_total", reason="disconnected") == 2, m
    assert metric(m, "shufflenet_queue_depth", model="g8") == 0
    assert [r[0] for r in later] == [200, 200], later


def t_drain(_S):
    S2 = Server("--model", "g3=" + G3, "--workers", "1", "--max-batch", "2",
                "--queue-size", "64", "--drain-timeout-ms", "120000",
                "--request-timeout-ms", "120000")
    data = sample("opencv_baboon.jpg")
    out = []
    lock = threading.Lock()

    def one():
        try:
            r = S2.post_raw(data)
        except OSError as e:
            r = (None, None, e)
        with lock:
            out.append(r)
    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.3 * SLOW)
    S2.p.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    try:
        socket.create_connection(("127.0.0.1", S2.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    for t in threads:
        t.join()
    rc = S2.stop()
    assert rc == 0, rc
    assert refused, "new connection accepted while draining"
    ok = [r for r in out if r[0] == 200]
    other = [r for r in out if r[0] != 200]
    assert len(ok) >= 1, out
    # every request the server admitted got its 200; the rest were refused at connect, or
    # (arriving after the drain began) told so
    for st, _, body in other:
        assert st is None or (st == 503 and body["error"]["code"] == "shutting_down"), (st, body)
    assert "drained" in S2.logtext()


def t_batching(_S):
    # Twelve different images: real photos, or generated gradients of different sizes. They
    # batch (a batch histogram bucket above 1), and every batched answer equals the answer
    # the same image got alone.
    if HAVE_SHARED:
        names = [n for n in shared_images() if n not in EDGE_STATUS][:12]
        data = {n: image(n) for n in names}
    else:
        data = {"gen%d" % i: make_png(240 + 8 * i, 200 + 4 * i) for i in range(12)}
        names = sorted(data)
    S2 = Server("--model", "g3=" + G3, "--workers", "1", "--max-batch", "8",
                "--max-batch-delay-us", "50000", "--http-threads", "4")
    try:
        single = {n: ok_topk(S2.post_raw(data[n]))["results"][0]["top_k"] for n in names}
        out = {}

        def one(n):
            out[n] = S2.post_raw(data[n])
        ts = [threading.Thread(target=one, args=(n,)) for n in names]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        m = S2.metrics()
    finally:
        assert S2.stop() == 0
    for n in names:
        got = ok_topk(out[n])["results"][0]["top_k"]
        assert [t["index"] for t in got] == [t["index"] for t in single[n]], n
        for a, b in zip(got, single[n]):
            assert abs(a["score"] - b["score"]) <= 1e-5, (n, a, b)
    ones = metric(m, "shufflenet_batch_size_bucket", model="g3", le="1")
    total = metric(m, "shufflenet_batch_size_count", model="g3")
    assert total > ones, "no batch > 1 (%s of %s batches had one image)" % (ones, total)


def t_promtool(S):
    if not shutil_which("promtool"):
        raise Skip("promtool not installed (Debian package prometheus)")
    S.post_raw(sample())
    text = S.metrics()
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == "" and out.stderr.strip() == "", \
        (out.returncode, out.stdout, out.stderr)
    for name in ("shufflenet_requests_total", "shufflenet_request_duration_seconds_bucket",
                 "shufflenet_queue_wait_seconds_bucket", "shufflenet_decode_seconds_bucket",
                 "shufflenet_inference_seconds_bucket", "shufflenet_batch_size_bucket",
                 "shufflenet_queue_depth", "shufflenet_inflight_requests",
                 "shufflenet_images_total", "shufflenet_rejected_total",
                 "shufflenet_build_info", "process_resident_memory_bytes",
                 "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"):
        assert metric(text, name) is not None, name


def shutil_which(x):
    import shutil
    return shutil.which(x)


def t_prometheus_scrape(S):
    if not shutil_which("prometheus"):
        raise Skip("prometheus not installed (Debian package prometheus)")
    port = free_port()
    d = os.path.join(TMP, "prom")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: shufflenet\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % S.port)
    log = open(os.path.join(d, "prometheus.log"), "w")
    p = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(d, "prometheus.yml"),
                          "--storage.tsdb.path=" + os.path.join(d, "data"),
                          "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=log)
    try:
        def query(q):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
            j = json.loads(c.getresponse().read())
            c.close()
            assert j["status"] == "success", j
            return j["data"]["result"]
        data = sample()
        deadline = time.time() + 60
        rate = p99 = []
        while time.time() < deadline:
            for _ in range(5):
                S.post_raw(data)
            time.sleep(0.5)
            try:
                rate = query("rate(shufflenet_requests_total[1m])")
                p99 = query("histogram_quantile(0.99, "
                            "rate(shufflenet_request_duration_seconds_bucket[1m]))")
            except (OSError, ValueError, http.client.HTTPException):
                continue
            rate = [r for r in rate if r["metric"].get("code") == "200" and
                    float(r["value"][1]) > 0]
            p99 = [r for r in p99 if r["value"][1] not in ("NaN", "+Inf")]
            if rate and p99:
                break
        assert rate, "no rate(shufflenet_requests_total[1m]) > 0"
        assert p99, "no finite p99"
        for r in p99:
            assert 0 < float(r["value"][1]) <= 10, r
    finally:
        p.terminate()
        p.wait(30)
        log.close()


TESTS = [t_models_and_probes, t_every_shared_image_raw_and_multipart, t_expected_classes,
         t_several_files_in_one_request, t_curl_like_readme, t_error_codes, t_payload_too_large,
         t_config_errors, t_model_flag_replaces_default, t_json_access_log, t_promtool, t_prometheus_scrape, t_overload,
         t_timeout_504, t_disconnect_frees_slot, t_batching, t_drain]


def run_one(name, fn, detail=""):
    """Runs one test case and prints PASS/SKIP/FAIL; returns (passed, failed, skipped) as
    0/1 counts. Shared by the integration scripts."""
    t0 = time.time()
    try:
        fn()
        print("PASS %s%s (%.2fs)" % (name, detail, time.time() - t0), flush=True)
        return 1, 0, 0
    except Skip as e:
        print("SKIP: %s: %s" % (name, e), flush=True)
        return 0, 0, 1
    except Exception:  # noqa: BLE001 - report and go on
        print("FAIL %s%s" % (name, detail), flush=True)
        traceback.print_exc()
        return 0, 1, 0


def run_standalone(label, tests):
    """main() of a script whose tests start their own servers: runs the tests named on the
    command line (all by default), prints the closing line, returns the exit status."""
    only = sys.argv[1:]
    passed = failed = skipped = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        r = run_one(t.__name__, lambda: t(None))
        passed, failed, skipped = passed + r[0], failed + r[1], skipped + r[2]
    print("%s: %d passed, %d failed, %d skipped" % (label, passed, failed, skipped))
    return 1 if failed else 0


def run_suite(S, cases, title=""):
    """Runs (name, fn, detail) cases against the server S, then checks that it is still up,
    logged no 500 and exits 0 on SIGTERM (no sanitizer report); prints the closing
    "N passed, N failed, N skipped" line. Shared by the integration scripts; returns the
    exit status."""
    passed = failed = skipped = 0
    try:
        for name, fn, detail in cases:
            r = run_one(name, fn, detail)
            passed, failed, skipped = passed + r[0], failed + r[1], skipped + r[2]
            if r[1] and S.p.poll() is not None:
                break
        if S.p.poll() is not None:
            failed += 1
            print("FAIL: the server died:\n" + S.logtext()[-4000:])
        if re.search(r" 500 \d+ ", S.logtext()):
            failed += 1
            print("FAIL: a 500 in the access log")
    finally:
        try:
            rc = S.stop()
        except AssertionError as e:
            rc = -1
            print("FAIL: %s" % e)
        if rc != 0:
            failed += 1
            print("FAIL: server exit status %s" % rc)
    print("%s%d passed, %d failed, %d skipped" % (title, passed, failed, skipped))
    return 1 if failed else 0


def main():
    only = sys.argv[1:]
    S = Server("--model", "g3=" + G3, "--model", "g8=" + G8, "--workers", "2")
    return run_suite(S, [(t.__name__, lambda t=t: t(S), "") for t in TESTS
                         if not only or t.__name__ in only])


if __name__ == "__main__":
    sys.exit(main())
