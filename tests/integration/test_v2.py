#!/usr/bin/env python3
"""The Open Inference Protocol (KServe v2) API of shufflenet-server, against the real binary.

Every v2 response a test gets goes through v2(), which validates its JSON (the JSON header of
a binary response) against ../shared/oip/open_inference_rest.yaml with Ajv (node, installed
by tests/integration/oip-deps.sh into .cache/oip-schema) and checks that an error is
{"error": "<non-empty string>"}. Binary outputs are parsed back (tools/v2_client.py) and
must equal the JSON numbers. Without ../shared the schema checks print SKIP.

Standard library only (plus node for the schema); run by tests/integration/run.sh.
"""
import base64
import json
import os
import struct
import subprocess
import sys
import threading
import time

from test_server import (CLI, EDGE_STATUS, G3, G8, HAVE_SHARED, IMAGES, SHARED, SLOW, TMP,
                         Server, Skip, held_server, hold_worker, make_png, metric, run_suite,
                         sample, shared_images)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from v2_client import binary_request, bytes_elements, parse_response, read_npy  # noqa: E402

YAML = os.path.join(SHARED, "oip", "open_inference_rest.yaml")
NODE_MODULES = os.path.join(ROOT, ".cache", "oip-schema", "node_modules")


class Schema:
    """The node validator, one process for the whole run (None without ../shared)."""

    def __init__(self):
        if not os.path.exists(os.path.join(NODE_MODULES, "ajv")):
            raise AssertionError("ajv not installed: run tests/integration/oip-deps.sh")
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        self.p = subprocess.Popen(["node", os.path.join(os.path.dirname(__file__),
                                                        "oip_schema.js"), YAML],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env)
        self.checked = 0
        self.lock = threading.Lock()  # tests check from several threads at once

    def check(self, schema, body):
        with self.lock:
            self.p.stdin.write(json.dumps({"schema": schema, "body": body}) + "\n")
            self.p.stdin.flush()
            r = json.loads(self.p.stdout.readline())
            self.checked += 1
        return r

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


SCHEMA = None


def schema_for(path, ok):
    """The OpenAPI schema a response to path must satisfy (None: the YAML has none)."""
    p = path.split("?")[0].rstrip("/")
    if p == "/v2":
        return "metadata_server_response" if ok else "metadata_server_error_response"
    if p.startswith("/v2/models/"):
        if p.endswith("/infer"):
            return "inference_response" if ok else "inference_error_response"
        if not p.endswith("/ready"):
            return "metadata_model_response" if ok else "metadata_model_error_response"
    return None  # health and ready: no body schema in the YAML


def v2(S, method, path, body=None, headers=None):
    """One request; the response validated. Returns (status, headers, JSON header, values)
    where values maps an infer response's outputs to their (decoded) data."""
    st, h, raw = S.request(method, path, body, headers or {})
    if method == "HEAD":
        return st, h, None, None
    head, values = parse_response(h, raw) if st == 200 and path.endswith("/infer") else \
        (json.loads(raw), None)
    if st != 200 and not (st == 503 and "ready" in head):
        assert isinstance(head.get("error"), str) and head["error"], (st, head)
        assert set(head) == {"error"}, head
    assert h.get("content-type", "").startswith(
        "application/octet-stream" if "inference-header-content-length" in h else
        "application/json"), h
    name = schema_for(path, st == 200)
    if name and SCHEMA:
        r = SCHEMA.check(name, head)
        assert r["ok"], "%s %s -> %d: not a valid %s: %s\n%s" % (
            method, path, st, name, r["errors"], json.dumps(head)[:600])
    return st, h, head, values


def infer(S, header, blobs=None, model="g3", path=None, extra=None):
    path = path or "/v2/models/%s/infer" % model
    h = dict(extra or {})
    if blobs is None:
        body = json.dumps(header).encode()
        h.setdefault("Content-Type", "application/json")
    else:
        body, hl = binary_request(header, blobs)
        h["Inference-Header-Content-Length"] = str(hl)
    return v2(S, "POST", path, body, h)


def image_input(images, binary=True, prefix=True, shape=None):
    """The BYTES "image" input: (input object, blobs)."""
    inp = {"name": "image", "datatype": "BYTES", "shape": shape or [len(images)]}
    if not binary:
        inp["data"] = [base64.b64encode(b).decode() for b in images]
        return inp, None
    blob = bytes_elements(images) if prefix else b"".join(images)
    inp["parameters"] = {"binary_data_size": len(blob)}
    return inp, [blob]


def tensor_input(shape, raw, binary=True):
    inp = {"name": "input", "datatype": "FP32", "shape": list(shape)}
    if not binary:
        inp["data"] = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        return inp, None
    inp["parameters"] = {"binary_data_size": len(raw)}
    return inp, [raw]


def ok_infer(res):
    st, _, head, values = res
    assert st == 200, (st, head)
    return head, values


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def top5(probs, classes=1000):
    """[(index, score)] best first, per image (ties: lower index first, as the server)."""
    out = []
    for i in range(len(probs) // classes):
        row = probs[i * classes:(i + 1) * classes]
        idx = sorted(range(classes), key=lambda c: (-row[c], c))[:5]
        out.append([(c, row[c]) for c in idx])
    return out


def preprocess(files):
    """`shufflenet preprocess` of image files: (shape, raw float32 bytes)."""
    out = os.path.join(TMP, "pre-%d.npy" % len(os.listdir(TMP)))
    r = subprocess.run([CLI, "preprocess", "--model", G3] + files + ["-o", out],
                       capture_output=True, text=True, timeout=600 * SLOW)
    assert r.returncode == 0, r.stderr
    return read_npy(out)


def test_images():
    """(name, bytes, path) of the images the equality tests use: every good shared image, or
    generated PNGs written to TMP without ../shared."""
    if HAVE_SHARED:
        names = [n for n in shared_images() if n not in EDGE_STATUS]
        return [(n, open(os.path.join(IMAGES, n), "rb").read(), os.path.join(IMAGES, n))
                for n in names]
    out = []
    for i in range(4):
        p = os.path.join(TMP, "gen%d.png" % i)
        data = make_png(200 + 40 * i, 160 + 24 * i)
        with open(p, "wb") as f:
            f.write(data)
        out.append(("gen%d.png" % i, data, p))
    return out


# ---- tests ------------------------------------------------------------------------------------

def t_schema_validator_can_fail(S):
    """The validator rejects what the schema forbids (so a pass means something)."""
    if not SCHEMA:
        raise Skip("../shared/oip not found: no schema checks")
    assert SCHEMA.check("inference_response", {"model_name": "g3", "outputs": []})["ok"]
    assert not SCHEMA.check("inference_response", {"model_name": "g3"})["ok"]
    bad_out = {"model_name": "g3", "outputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}
    assert not SCHEMA.check("inference_response", bad_out)["ok"]  # no "data"
    assert not SCHEMA.check("metadata_model_response", {"name": "g3"})["ok"]  # no platform
    assert not SCHEMA.check("metadata_server_response", {"name": "x", "version": "1"})["ok"]
    assert not SCHEMA.check("inference_error_response", {"error": 3})["ok"]


def t_server_metadata_and_health(S):
    st, _, j, _ = v2(S, "GET", "/v2")
    assert st == 200 and j["name"] and j["version"], j
    assert set(j["extensions"]) == {"binary_tensor_data", "classification"}, j
    assert v2(S, "GET", "/v2/")[0] == 200
    st, _, j, _ = v2(S, "GET", "/v2/health/live")
    assert st == 200 and j == {"live": True}, j
    st, _, j, _ = v2(S, "GET", "/v2/health/ready")
    assert st == 200 and j == {"ready": True}, j
    assert v2(S, "HEAD", "/v2/health/ready")[0] == 200
    for path in ("/v2/health", "/v2/nothing", "/v2/models", "/v2/models/g3/stats",
                 "/v2/models/g3/versions/1/x", "/v2/models/g3/versions//infer"):
        st, _, j, _ = v2(S, "GET", path)
        assert st == 404, (path, st, j)
    st, h, j, _ = v2(S, "POST", "/v2/health/live", b"{}")
    assert st == 405 and "GET" in h["allow"], (st, h)


def t_model_metadata_and_versions(S):
    st, _, m, _ = v2(S, "GET", "/v2/models/g3")
    assert st == 200 and m["name"] == "g3" and m["platform"], m
    ins = {t["name"]: t for t in m["inputs"]}
    outs = {t["name"]: t for t in m["outputs"]}
    assert ins["image"] == {"name": "image", "datatype": "BYTES", "shape": [-1]}, ins
    assert ins["input"] == {"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224]}
    for o in ("logits", "probabilities"):
        assert outs[o] == {"name": o, "datatype": "FP32", "shape": [-1, 1000]}, outs
    p = m["properties"]
    assert p["max_batch_size"] == "16" and "base64" in p["image"], p
    pre = m["preprocess"]
    assert pre["crop"] == 224 and pre["channel_order"] in ("bgr", "rgb"), pre
    assert "BGR" in p["input"] or "RGB" in p["input"]
    assert "mean" in p["input"] and "0..255" in p["input"], p["input"]
    sha = p["sha256"]
    assert m["versions"] == ["1", sha[:12]], m["versions"]
    for v in ("1", sha[:8], sha[:12], sha, sha[:20].upper()):
        st, _, m2, _ = v2(S, "GET", "/v2/models/g3/versions/" + v)
        assert st == 200 and m2 == m, (v, st)
        st, _, r, _ = v2(S, "GET", "/v2/models/g3/versions/%s/ready" % v)
        assert st == 200 and r == {"name": "g3", "ready": True}, r
    for v in ("2", "0", sha[:7], "zz" + sha[:10], sha + "0"):
        st, _, e, _ = v2(S, "GET", "/v2/models/g3/versions/" + v)
        assert st == 404 and "version" in e["error"], (v, st, e)
        assert v2(S, "GET", "/v2/models/g3/versions/%s/ready" % v)[0] == 404
    st, _, e, _ = v2(S, "GET", "/v2/models/nope")
    assert st == 404 and "nope" in e["error"], e
    assert v2(S, "GET", "/v2/models/nope/ready")[0] == 404
    st, _, r, _ = v2(S, "GET", "/v2/models/g8/ready")
    assert st == 200 and r["name"] == "g8" and r["ready"] is True
    assert v2(S, "GET", "/v2/models/g8")[2]["properties"]["sha256"] != sha


def t_binary_equals_json(S):
    """The same request four ways (JSON base64, binary with and without length prefix,
    [N, 1]); JSON and binary outputs, classification too: the same numbers."""
    img = sample()
    ref = None
    for binary, prefix, shape in ((False, True, None), (True, True, None), (True, False, None),
                                  (True, True, [1, 1])):
        inp, blobs = image_input([img], binary, prefix, shape)
        for bin_out in (False, True):
            header = {"id": "eq", "inputs": [inp],
                      "outputs": [{"name": "logits"}, {"name": "probabilities",
                                                       "parameters": {"classification": 5}}],
                      "parameters": {"binary_data_output": bin_out}}
            head, vals = ok_infer(infer(S, header, blobs))
            assert head["id"] == "eq" and head["model_name"] == "g3"
            assert head["model_version"] == "1"
            lg = vals["logits"]
            assert len(lg) == 1000 and all(isinstance(x, float) for x in lg)
            if bin_out:
                assert all(o["data"] == [] and o["parameters"]["binary_data_size"] > 0
                           for o in head["outputs"]), head
            if ref is None:
                ref = (lg, vals["probabilities"])
            else:
                assert [f32(x) for x in lg] == [f32(x) for x in ref[0]], (binary, prefix, bin_out)
                assert vals["probabilities"] == ref[1], (vals["probabilities"], ref[1])
    logits, cls = ref
    # no outputs asked for: both, FP32 [1, 1000], JSON
    head, vals = ok_infer(infer(S, {"inputs": [image_input([img], False)[0]]}))
    assert [o["name"] for o in head["outputs"]] == ["logits", "probabilities"], head
    assert all(o["shape"] == [1, 1000] and o["datatype"] == "FP32" for o in head["outputs"])
    assert "id" not in head
    probs = vals["probabilities"]
    assert abs(sum(probs) - 1) < 1e-4
    assert [f32(x) for x in vals["logits"]] == [f32(x) for x in logits]
    best = top5(probs)[0]
    for rank, item in enumerate(cls):
        value, index, label = item.split(":", 2)
        assert int(index) == best[rank][0] and abs(float(value) - best[rank][1]) < 1e-6
        assert label
    # K of 64 or less is selected by insertion, more by a full sort: both as Python sorts
    for k in (64, 65, 1000):
        header = {"inputs": [image_input([img], False)[0]],
                  "outputs": [{"name": "logits", "parameters": {"classification": k}}]}
        _, v = ok_infer(infer(S, header))
        want = sorted(range(1000), key=lambda c: (-f32(logits[c]), c))[:k]
        assert [int(e.split(":")[1]) for e in v["logits"]] == want, k
    # per-output binary_data mixes JSON and binary in one response
    inp, blobs = image_input([img])
    header = {"inputs": [inp], "outputs": [
        {"name": "probabilities", "parameters": {"binary_data": True}},
        {"name": "logits", "parameters": {"classification": 3, "binary_data": False}}]}
    st, h, head, vals = infer(S, header, blobs)
    assert st == 200 and "inference-header-content-length" in h
    assert head["outputs"][0]["name"] == "probabilities" and head["outputs"][1]["shape"] == [1, 3]
    assert head["outputs"][1]["datatype"] == "BYTES" and len(head["outputs"][1]["data"]) == 3
    assert [f32(x) for x in vals["probabilities"]] == [f32(x) for x in probs]
    lg_top = sorted(range(1000), key=lambda c: (-logits[c], c))[:3]
    assert [int(s.split(":")[1]) for s in vals["logits"]] == lg_top


def t_same_as_classify_bytes_and_fp32(S):
    """Each image through /classify, v2 BYTES (binary) and v2 FP32 (binary, the tensor made by
    `shufflenet preprocess`): identical top-5, scores within 1e-6."""
    imgs = test_images()
    shape, raw = preprocess([p for _, _, p in imgs])
    per = len(raw) // shape[0]
    worst = 0.0
    for i, (name, data, _) in enumerate(imgs):
        st, _, body = S.post_raw(data, "?top_k=5")
        assert st == 200, (name, body)
        cl = [(t["index"], t["score"]) for t in body["results"][0]["top_k"]]
        inp, blobs = image_input([data])
        _, vb = ok_infer(infer(S, {"inputs": [inp], "outputs": [{"name": "probabilities"}]},
                               blobs))
        inp, blobs = tensor_input([1, 3, 224, 224], raw[i * per:(i + 1) * per])
        _, vt = ok_infer(infer(S, {"inputs": [inp], "outputs": [{"name": "probabilities"}]},
                               blobs))
        tb, tt = top5(vb["probabilities"])[0], top5(vt["probabilities"])[0]
        assert [c for c, _ in tb] == [c for c, _ in cl] == [c for c, _ in tt], (name, cl, tb, tt)
        for (_, a), (_, b), (_, c) in zip(cl, tb, tt):
            worst = max(worst, abs(a - b), abs(b - c), abs(a - c))
            # /classify's JSON has 7 significant digits; v2 BYTES and FP32 agree exactly
            assert abs(a - b) <= 1e-6 and b == c, (name, a, b, c)
    print("    %d images: /classify, v2 BYTES, v2 FP32 top-5 identical, max |diff| %.2g"
          % (len(imgs), worst))


def t_batch_of_n(S):
    """N images in one request (BYTES binary, JSON base64; FP32 JSON nested and flat) equal
    the images sent one by one."""
    imgs = test_images()[:3]
    datas = [d for _, d, _ in imgs]
    singles = []
    for d in datas:
        inp, blobs = image_input([d])
        singles.append(ok_infer(infer(S, {"inputs": [inp]}, blobs))[1]["logits"])
    for binary in (True, False):
        inp, blobs = image_input(datas, binary)
        head, vals = ok_infer(infer(S, {"inputs": [inp]}, blobs))
        assert head["outputs"][0]["shape"] == [3, 1000]
        assert [f32(x) for x in vals["logits"]] == [f32(x) for s in singles for x in s]
    shape, raw = preprocess([p for _, _, p in imgs[:2]])
    flat = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    nested = [[[flat[((n * 3 + c) * 224 + y) * 224:((n * 3 + c) * 224 + y + 1) * 224]
                for y in range(224)] for c in range(3)] for n in range(2)]
    ref = None
    for data in (flat, nested):
        header = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 3, 224, 224],
                              "data": data}], "outputs": [{"name": "logits"}]}
        _, vals = ok_infer(infer(S, header))
        ref = ref or vals["logits"]
        assert vals["logits"] == ref
    assert [f32(x) for x in ref] == [f32(x) for s in singles[:2] for x in s]


def t_errors_are_v2_shaped(S):
    """A few errors of each kind: {"error": "..."} (the catalog has 30 more)."""
    inp, blobs = image_input([b"GIF89a\x01\x00\x01\x00\x80\x00\x00"])
    st, _, e, _ = infer(S, {"inputs": [inp]}, blobs)
    assert st == 415 and "element 0" in e["error"], (st, e)
    st, _, e, _ = infer(S, {"inputs": []})
    assert st == 400 and "one input" in e["error"]
    st, _, e, _ = infer(S, {"inputs": []}, model="nope")
    assert st == 404 and "nope" in e["error"]


def parallel(fns):
    """Runs the functions at once on threads; their results in order."""
    out = [None] * len(fns)

    def run(i):
        out[i] = fns[i]()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def t_overload_503_and_timeout_504(_S):
    """As /classify: a full queue is 503 with Retry-After, a passed deadline 504."""
    data = sample()
    inp, blobs = image_input([data])
    S2 = held_server("--request-timeout-ms", "400")
    try:
        holder = hold_worker(S2, 3)
        out = parallel([lambda: infer(S2, {"inputs": [inp]}, blobs, model="g8")] * 6)
        holder.join()
        m = S2.settled_metrics()
    finally:
        assert S2.stop() == 0
    codes = sorted(r[0] for r in out)
    assert codes.count(503) >= 1 and set(codes) <= {200, 503, 504}, codes
    assert 504 in codes, codes  # queued behind the held worker past 400 ms
    for st, h, e, _ in out:
        if st == 503:
            assert h.get("retry-after") == "1" and "retry" in e["error"], (h, e)
        if st == 504:
            assert "deadline" in e["error"], e
    assert metric(m, "shufflenet_requests_total", model="g8", endpoint="v2") == 6
    assert metric(m, "shufflenet_requests_total", model="g8", endpoint="v2",
                  code="503") == codes.count(503)
    assert metric(m, "shufflenet_requests_total", model="g8", endpoint="classify") == 0


def t_v2_and_classify_share_batches(_S):
    """One worker, max_batch 4, a long batch delay: a v2 BYTES request of two images, a
    /classify upload and a v2 FP32 tensor arrive together and run as one batch of four."""
    imgs = test_images()[:2]
    shape, raw = preprocess([imgs[0][2]])
    delay_us = str(int(min(5e6 * SLOW, 1e7)))
    S2 = Server("--model", "g3=" + G3, "--workers", "1", "--max-batch", "4",
                "--max-batch-delay-us", delay_us, "--http-threads", "4")
    try:
        inp_b, blobs_b = image_input([d for _, d, _ in imgs])
        inp_t, blobs_t = tensor_input(shape, raw)
        res = dict(zip(("v2_bytes", "v2_fp32", "classify"), parallel([
            lambda: infer(S2, {"inputs": [inp_b]}, blobs_b),
            lambda: infer(S2, {"inputs": [inp_t]}, blobs_t),
            lambda: S2.post_raw(imgs[1][1])])))
        m = S2.settled_metrics()
    finally:
        assert S2.stop() == 0
    assert all(r[0] == 200 for r in res.values()), {k: r[0] for k, r in res.items()}
    assert metric(m, "shufflenet_batch_size_count", model="g3") == 1, m
    assert metric(m, "shufflenet_batch_size_sum", model="g3") == 4
    assert metric(m, "shufflenet_images_total", model="g3") == 4
    assert metric(m, "shufflenet_requests_total", model="g3", endpoint="v2", code="200") == 2
    assert metric(m, "shufflenet_requests_total", model="g3", endpoint="classify",
                  code="200") == 1
    assert metric(m, "shufflenet_request_duration_seconds_count", model="g3") == 3


def t_draining_not_ready(_S):
    """While shutting down /v2/health/ready answers 503: a request held in the worker (it waits
    seconds for a batch partner) keeps the server draining while the probe comes in on a
    connection opened before the SIGTERM."""
    import signal
    import socket
    S2 = held_server("--drain-timeout-ms", "30000")
    holder = hold_worker(S2, 3)
    s = socket.create_connection(("127.0.0.1", S2.port))
    S2.p.send_signal(signal.SIGTERM)
    time.sleep(0.1 * SLOW)
    try:
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = s.recv(65536)
    finally:
        s.close()
        holder.join()
        assert S2.stop() == 0
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), reply
    assert json.loads(body) == {"ready": False, "error": "the server is shutting down"}, body


def t_shutdown_delay_not_ready(_S):
    """During the shutdown delay after SIGTERM the server still serves, but the v2 ready
    probes say 503 (as /readyz) while live stays 200."""
    import signal
    S2 = Server("--model", "g3=" + G3, "--workers", "1",
                env={"SHUFFLENET_SHUTDOWN_DELAY_MS": str(int(5000 * SLOW))})
    try:
        S2.p.send_signal(signal.SIGTERM)
        time.sleep(0.3 * SLOW)
        st, _, j, _ = v2(S2, "GET", "/v2/health/ready")
        assert st == 503 and j == {"ready": False, "error": "the server is shutting down"}, j
        st, _, j, _ = v2(S2, "GET", "/v2/models/g3/ready")
        assert st == 503 and j["ready"] is False and j["name"] == "g3", j
        assert v2(S2, "GET", "/v2/health/live")[0] == 200
        inp, blobs = image_input([sample()])
        assert infer(S2, {"inputs": [inp]}, blobs)[0] == 200  # still serving
    finally:
        assert S2.stop() == 0


def t_client_script(S):
    """tools/v2_client.py: binary BYTES images and a binary FP32 tensor print the same top-5."""
    imgs = test_images()[:2]
    shape, raw = preprocess([p for _, _, p in imgs])
    npy = os.path.join(TMP, "client.npy")
    subprocess.run([CLI, "preprocess", "--model", G3] + [p for _, _, p in imgs] + ["-o", npy],
                   check=True)
    url = "http://127.0.0.1:%d" % S.port
    client = os.path.join(ROOT, "tools", "v2_client.py")
    outs = []
    for args in ([p for _, _, p in imgs], ["--tensor", npy], ["--json"] + [imgs[0][2]]):
        r = subprocess.run([sys.executable, client, "--url", url] + args, capture_output=True,
                           text=True, timeout=120 * SLOW)
        assert r.returncode == 0, r.stderr
        outs.append([line.split()[1] for line in r.stdout.splitlines() if line.startswith("  ")])
    assert len(outs[0]) == 10 and outs[0] == outs[1], outs
    assert outs[2] == outs[0][:5]


TESTS = [t_schema_validator_can_fail, t_server_metadata_and_health, t_model_metadata_and_versions,
         t_binary_equals_json, t_same_as_classify_bytes_and_fp32, t_batch_of_n,
         t_errors_are_v2_shaped, t_client_script, t_overload_503_and_timeout_504,
         t_v2_and_classify_share_batches, t_draining_not_ready, t_shutdown_delay_not_ready]


def start_schema():
    global SCHEMA
    if not os.path.exists(YAML):
        print("SKIP: ../shared/oip not found: v2 responses are not checked against the schema")
        return
    SCHEMA = Schema()


def main():
    only = sys.argv[1:]
    start_schema()
    S = Server("--model", "g3=" + G3, "--model", "g8=" + G8, "--workers", "2")
    try:
        return run_suite(S, [(t.__name__, lambda t=t: t(S), "") for t in TESTS
                             if not only or t.__name__ in only], "v2: ")
    finally:
        if SCHEMA:
            print("    %d v2 responses validated against %s" % (SCHEMA.checked, YAML))
            SCHEMA.close()


if __name__ == "__main__":
    sys.exit(main())
