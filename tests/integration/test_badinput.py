#!/usr/bin/env python3
"""Bad-input catalog for shufflenet-server: one real server, one case per hostile request.

Each case sends one kind of bad input and checks the documented answer: the status and, when
the service itself answers, a JSON body {"error": {"code", "message"}} with the expected code.
A few malformed requests never reach the service: libmicrohttpd answers them itself (with
its own short HTML body) or closes the connection; those cases check the status only and
say so. After every case /healthz must still answer 200; at the end the server log must hold
no 500, no sanitizer report, and the server must exit 0 on SIGTERM.

Standard library only; run by tests/integration/run.sh (same environment as test_server.py).
"""
import json
import os
import re
import socket
import struct
import sys
import time
import zlib

from test_server import (G3, G8, HAVE_SHARED, IMAGES, SLOW, Server, Skip, make_png, metric, run_one,
                         multipart)

# ---- raw HTTP -------------------------------------------------------------------------------


def raw(S, data, timeout=10, half_close=False):
    """Send bytes as they are; return (status, headers, body) of the first reply, or
    (None, {}, b"") when the server closed the connection without one."""
    s = socket.create_connection(("127.0.0.1", S.port), timeout=timeout * SLOW)
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    finally:
        s.close()
    if not buf:
        return None, {}, b""
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def req(method, path, body=b"", headers=None):
    h = {"Host": "127.0.0.1", "Connection": "close"}
    if method in ("POST", "PUT", "PATCH") or body:
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    lines = "".join("%s: %s\r\n" % kv for kv in h.items())
    return ("%s %s HTTP/1.1\r\n%s\r\n" % (method, path, lines)).encode() + body


def json_error(res, status, code):
    """The service's own answer: status and a JSON error body with this code."""
    st, h, body = res
    assert st == status, "expected %d %s, got %s %r" % (status, code, st, body[:300])
    assert h.get("content-type", "").startswith("application/json"), h
    j = json.loads(body)
    assert j["error"]["code"] == code and j["error"]["message"], j
    return h


def mhd_error(res, status):
    """An answer libmicrohttpd gives itself (its own HTML body): the status only."""
    st, _, body = res
    assert st == status, "expected %d from libmicrohttpd, got %s %r" % (status, st, body[:300])


def ok(res):
    st, _, body = res
    assert st == 200, (st, body[:300])
    j = json.loads(body)
    assert j["results"] and j["results"][0]["top_k"], j
    return j


# ---- made-up images -------------------------------------------------------------------------

def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))


def zlib_bomb(nbytes):
    """nbytes of zeros, deflated (about 1000:1)."""
    c = zlib.compressobj(9)
    block = bytes(1 << 20)
    out = [c.compress(block) for _ in range(nbytes >> 20)]
    return b"".join(out) + c.flush()


def png_bomb(w, h, inflated):
    """A PNG whose IHDR says w x h RGB and whose IDAT inflates to `inflated` zero bytes."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib_bomb(inflated)) + png_chunk(b"IEND", b""))


def jpeg_resized(data, w, h):
    """A real JPEG with its SOF0..SOF2 frame header rewritten to claim w x h."""
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        i = data.find(marker)
        if i > 0:
            return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]
    raise AssertionError("no SOF marker")


PNG = make_png(64, 48)
BOMB_BIG = png_bomb(20000, 20000, 100 << 20)  # 400 Mpx declared, 100 MB of zeros inside
BOMB_SMALL = png_bomb(64, 64, 64 << 20)  # a 64x64 image whose IDAT inflates to 64 MB


def shared(name):
    if not HAVE_SHARED:
        raise Skip("../shared not found")
    with open(os.path.join(IMAGES, name), "rb") as f:
        return f.read()


def post(S, body, ctype="application/octet-stream", path="/classify", extra=None):
    h = {"Content-Type": ctype}
    h.update(extra or {})
    return raw(S, req("POST", path, body, h))


# ---- the catalog ----------------------------------------------------------------------------
# Each entry: (name, what is expected, function(S)). Expected statuses are the design's:
# 400 undecodable/bad request, 404 unknown model or route, 405 wrong method, 413 body or
# pixels over the limit, 415 unsupported type; "mhd" marks libmicrohttpd's own answers.

CASES = []


def case(name, expect):
    def add(fn):
        CASES.append((name, expect, fn))
        return fn
    return add


@case("GET /classify", "405 method_not_allowed, Allow: POST")
def _(S):
    h = json_error(raw(S, req("GET", "/classify")), 405, "method_not_allowed")
    assert h["allow"] == "POST"


@case("DELETE /classify", "405 method_not_allowed")
def _(S):
    json_error(raw(S, req("DELETE", "/classify")), 405, "method_not_allowed")


@case("PUT /v1/models/g3/classify with a body", "405 method_not_allowed")
def _(S):
    json_error(raw(S, req("PUT", "/v1/models/g3/classify", PNG)), 405, "method_not_allowed")


@case("OPTIONS /classify", "405 method_not_allowed")
def _(S):
    json_error(raw(S, req("OPTIONS", "/classify")), 405, "method_not_allowed")


@case("BREW /classify (unknown method token)", "405 method_not_allowed")
def _(S):
    json_error(raw(S, req("BREW", "/classify")), 405, "method_not_allowed")


@case("POST /healthz", "405 method_not_allowed, Allow: GET, HEAD")
def _(S):
    h = json_error(raw(S, req("POST", "/healthz", b"x")), 405, "method_not_allowed")
    assert "GET" in h["allow"]


@case("PATCH /v1/models/g3", "405 method_not_allowed")
def _(S):
    json_error(raw(S, req("PATCH", "/v1/models/g3", b"{}")), 405, "method_not_allowed")


@case("a 100 KB header line", "431 (mhd)")
def _(S):
    mhd_error(raw(S, req("GET", "/healthz", headers={"X-Big": "a" * 100000})), 431)


@case("10,000 header lines", "431 (mhd)")
def _(S):
    mhd_error(raw(S, req("GET", "/healthz", headers={"X-%d" % i: "y" for i in range(10000)})),
              431)


@case("a 100 KB URL", "414 (mhd)")
def _(S):
    mhd_error(raw(S, req("GET", "/" + "a" * 100000)), 414)


@case("header line without a colon", "400 (mhd)")
def _(S):
    mhd_error(raw(S, b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), 400)


@case("HTTP/9.9 request line", "505 (mhd)")
def _(S):
    mhd_error(raw(S, b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"), 505)


@case("request line of garbage", "connection closed without a reply (mhd)")
def _(S):
    st, _, _ = raw(S, b"GARBAGE\r\n\r\n")
    assert st in (None, 400), st


@case("Content-Length: abc", "400 (mhd)")
def _(S):
    mhd_error(raw(S, req("POST", "/classify", headers={"Content-Length": "abc"})), 400)


@case("Content-Length: -5", "400 (mhd)")
def _(S):
    mhd_error(raw(S, req("POST", "/classify", headers={"Content-Length": "-5"})), 400)


@case("Content-Length: 10^23 (overflows 64 bits)", "413 (mhd)")
def _(S):
    mhd_error(raw(S, req("POST", "/classify", headers={"Content-Length": "1" + "0" * 23})), 413)


@case("Content-Length over the 16M body limit", "413 payload_too_large before the body")
def _(S):
    json_error(raw(S, req("POST", "/classify", headers={"Content-Length": str(1 << 30)})), 413,
               "payload_too_large")


@case("Content-Length: 0", "400 invalid_image")
def _(S):
    json_error(post(S, b"", "image/jpeg"), 400, "invalid_image")


@case("Content-Length 100, 5 bytes sent, then EOF", "closed without a reply, request freed")
def _(S):
    # the server must close it itself (raw() would time out otherwise), well before the idle
    # timeout, and forget the request
    st, _, _ = raw(S, req("POST", "/classify", headers={"Content-Length": "100"}) + b"hello",
                   half_close=True)
    assert st is None, st
    deadline = time.time() + 5 * SLOW
    while metric(S.metrics(), "shufflenet_inflight_requests") != 1:
        assert time.time() < deadline, "the abandoned upload is still in flight"
        time.sleep(0.05)


@case("chunked: size 'zz'", "400 (mhd)")
def _(S):
    mhd_error(raw(S, req("POST", "/classify", headers={"Transfer-Encoding": "chunked"})
                  + b"zz\r\nhello\r\n0\r\n\r\n"), 400)


@case("chunked: size 2^76", "413 (mhd)")
def _(S):
    mhd_error(raw(S, req("POST", "/classify", headers={"Transfer-Encoding": "chunked"})
                  + b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 413)


@case("chunked: chunk longer than its size line", "400 (mhd)")
def _(S):
    mhd_error(raw(S, req("POST", "/classify", headers={"Transfer-Encoding": "chunked"})
                  + b"5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n"), 400)


@case("chunked: 17 MB of chunks (over the body limit)", "413 payload_too_large")
def _(S):
    chunk = b"%x\r\n%s\r\n" % (1 << 20, bytes(1 << 20))
    json_error(raw(S, req("POST", "/classify", headers={"Transfer-Encoding": "chunked"})
                   + chunk * 17 + b"0\r\n\r\n"), 413, "payload_too_large")


@case("Transfer-Encoding: gzip", "501 not_implemented")
def _(S):
    json_error(raw(S, req("POST", "/classify", headers={"Transfer-Encoding": "gzip"})
                   + b"hello"), 501, "not_implemented")


@case("Content-Encoding: gzip", "415 unsupported_media_type")
def _(S):
    json_error(post(S, zlib.compress(PNG), "image/png", extra={"Content-Encoding": "gzip"}), 415,
               "unsupported_media_type")


@case("multipart without a boundary", "400 bad_request")
def _(S):
    json_error(post(S, PNG, "multipart/form-data"), 400, "bad_request")


@case("multipart with an empty boundary", "400 bad_request")
def _(S):
    json_error(post(S, PNG, 'multipart/form-data; boundary=""'), 400, "bad_request")


@case("multipart with a 200-character boundary", "400 bad_request")
def _(S):
    b = "b" * 200
    json_error(post(S, ("--%s\r\n\r\nx\r\n--%s--\r\n" % (b, b)).encode(),
                    "multipart/form-data; boundary=" + b), 400, "bad_request")


@case("multipart with 10,000 image parts", "400 bad_request (max_images)")
def _(S):
    body, ctype = multipart([("p%d.png" % i, b"x") for i in range(10000)])
    json_error(post(S, body, ctype), 400, "bad_request")


@case("multipart with 10,000 plain form fields", "400 bad_request")
def _(S):
    body, ctype = multipart([], {"f%d" % i: "v" for i in range(10000)})
    json_error(post(S, body, ctype), 400, "bad_request")


@case("multipart with one 0-byte file part", "400 invalid_image")
def _(S):
    body, ctype = multipart([("empty.png", b"")])
    json_error(post(S, body, ctype), 400, "invalid_image")


@case("multipart: a good part, then a 0-byte part", "400 invalid_image naming image 2")
def _(S):
    body, ctype = multipart([("a.png", PNG), ("empty.png", b"")])
    st, h, b = post(S, body, ctype)
    json_error((st, h, b), 400, "invalid_image")
    assert "image 2" in json.loads(b)["error"]["message"], b


@case("multipart part headers of 100 KB", "400 bad_request")
def _(S):
    b = "xyzzy"
    body = ("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"%s\"\r\n\r\n"
            % (b, "f" * 100000)).encode() + PNG + ("\r\n--%s--\r\n" % b).encode()
    json_error(post(S, body, "multipart/form-data; boundary=" + b), 400, "bad_request")


@case("multipart with no closing delimiter", "400 bad_request")
def _(S):
    body, ctype = multipart([("a.png", PNG)])
    json_error(post(S, body[:-8], ctype), 400, "bad_request")


@case("PNG labelled image/jpeg", "200: the bytes decide, not the label")
def _(S):
    ok(post(S, PNG, "image/jpeg"))


@case("PNG labelled text/plain", "200: the bytes decide, not the label")
def _(S):
    ok(post(S, PNG, "text/plain"))


@case("GIF labelled image/png", "415 unsupported_media_type")
def _(S):
    json_error(post(S, b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(32), "image/png"), 415,
               "unsupported_media_type")


@case("JSON labelled application/json", "415 unsupported_media_type")
def _(S):
    json_error(post(S, b'{"image": "cat.jpg"}', "application/json"), 415,
               "unsupported_media_type")


@case("PNG labelled multipart/form-data; boundary=x", "400 bad_request")
def _(S):
    json_error(post(S, PNG, "multipart/form-data; boundary=x"), 400, "bad_request")


@case("a multipart body labelled image/png", "415 unsupported_media_type")
def _(S):
    body, _ = multipart([("a.png", PNG)])
    json_error(post(S, body, "image/png"), 415, "unsupported_media_type")


@case("PNG bomb: IHDR 20000x20000, IDAT inflating to 100 MB", "413 image_too_large, fast")
def _(S):
    t0 = time.time()
    json_error(post(S, BOMB_BIG, "image/png"), 413, "image_too_large")
    assert time.time() - t0 < 5 * SLOW, "the bomb was inflated before the budget check"


@case("PNG bomb: 64x64 image whose IDAT inflates to 64 MB", "200 or 400, without inflating it")
def _(S):
    t0 = time.time()
    st, h, b = post(S, BOMB_SMALL, "image/png")
    if st != 200:
        json_error((st, h, b), 400, "invalid_image")
    assert time.time() - t0 < 5 * SLOW


@case("a real JPEG whose header claims 65000x65000", "413 image_too_large")
def _(S):
    json_error(post(S, jpeg_resized(shared("caffe_cat.jpg"), 65000, 65000), "image/jpeg"), 413,
               "image_too_large")


@case("PNG with a bad IHDR CRC", "400 invalid_image")
def _(S):
    bad = bytearray(PNG)
    bad[29] ^= 0xFF  # last byte of the IHDR CRC
    json_error(post(S, bytes(bad), "image/png"), 400, "invalid_image")


# Query strings posted with a valid PNG: (query, status, code).
QUERIES = [("top_k=-1", 400, "bad_request"), ("top_k=1e9", 400, "bad_request"),
           ("top_k=1000000000", 400, "bad_request"),
           ("top_k=99999999999999999999999", 400, "bad_request"),
           ("top_k=%00", 400, "bad_request"), ("top_k=5%00x", 400, "bad_request"),
           ("model=../g3", 404, "model_not_found"),
           ("model=..%2F..%2Fetc%2Fpasswd", 404, "model_not_found"),
           ("model=" + "m" * 10240, 404, "model_not_found"), ("model=", 404, "model_not_found"),
           ("model=g3%00../x", 404, "model_not_found")]


def query_case(q, status, code):
    label = q if len(q) < 40 else q[:12] + "<%d bytes>" % (len(q) - 6)

    @case(label, "%d %s" % (status, code))
    def _(S):
        json_error(post(S, PNG, path="/classify?" + q), status, code)


for _q in QUERIES:
    query_case(*_q)


@case("/v1/models/../g3/classify", "404")
def _(S):
    st, _, b = post(S, PNG, path="/v1/models/../g3/classify")
    assert st == 404 and json.loads(b)["error"]["code"] in ("not_found", "model_not_found"), b


@case("/v1/models/..%2Fg3/classify", "404")
def _(S):
    st, _, b = post(S, PNG, path="/v1/models/..%2Fg3/classify")
    assert st == 404 and json.loads(b)["error"]["code"] in ("not_found", "model_not_found"), b


@case("/v1/models/<10 KB name>/classify", "404 model_not_found")
def _(S):
    json_error(post(S, PNG, path="/v1/models/%s/classify" % ("m" * 10240)), 404,
               "model_not_found")


@case("GET /v1/models/<10 KB name>", "404 model_not_found")
def _(S):
    json_error(raw(S, req("GET", "/v1/models/" + "m" * 10240)), 404, "model_not_found")


EDGE = {"edge_bomb_12000x12000_gray.jpg": (413, "image_too_large")}


@case("every ../shared/images/edge_* image, raw and multipart", "200, or 413 for the bomb")
def _(S):
    if not HAVE_SHARED:
        raise Skip("../shared not found")
    names = sorted(n for n in os.listdir(IMAGES) if n.startswith("edge_"))
    assert names, "no edge_* images in " + IMAGES
    for n in names:
        data = shared(n)
        body, ctype = multipart([(n, data)])
        for res in (post(S, data, "image/png" if n.endswith(".png") else "image/jpeg"),
                    post(S, body, ctype)):
            if n in EDGE:
                json_error(res, *EDGE[n])
            else:
                ok(res)


# ---- runner ---------------------------------------------------------------------------------

def main():
    only = sys.argv[1:]
    passed = failed = skipped = 0
    S = Server("--model", "g3=" + G3, "--model", "g8=" + G8, "--workers", "1")
    try:
        for name, expect, fn in CASES:
            if only and not any(o in name for o in only):
                continue
            def case():
                fn(S)
                st, _, _ = S.get("/healthz")
                assert st == 200, "/healthz answered %s after the case" % st
                assert S.p.poll() is None, "the server died"
            r = run_one("%-58s" % name, case, " -> %s" % expect)
            passed, failed, skipped = passed + r[0], failed + r[1], skipped + r[2]
            if r[1]:
                if S.p.poll() is not None:
                    print("the server died:\n" + S.logtext()[-4000:])
                    break
        log = S.logtext()
        if re.search(r" 500 \d+ ", log):
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
    print("bad-input catalog: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
