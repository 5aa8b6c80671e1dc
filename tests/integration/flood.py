#!/usr/bin/env python3
"""flood.py - N concurrent uploads of one large image to a server on 127.0.0.1, all started
together; prints the statuses and exits 1 if any answer is not 200 or 503 (a reset, a
timeout, another status). Used by test_memory.py and docker/test.sh.

usage: flood.py HOST:PORT [N] [WIDTHxHEIGHT]   (default 200 uploads of a 2200x2100 PNG,
       stored without compression: 13.9 MB). Loopback only; bounded by a 120 s join.
"""
import socket
import struct
import sys
import threading
import time
import zlib


def big_png(w=2200, h=2100):
    """A w x h RGB PNG, zlib level 0: about w*h*3 bytes, a real image the server decodes."""
    base = bytes((x * 7) % 256 for x in range(w * 3))
    rows = []
    for y in range(h):
        k = (y * 3) % len(base)
        rows.append(b"\0" + base[k:] + base[:k])

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 0)) + chunk(b"IEND", b""))


def upload(host, port, body, start, out, i, timeout):
    """One raw HTTP/1.1 POST without an Expect header (the whole body is sent whatever the
    answer), then the reply's status; or the exception's name."""
    try:
        start.wait()
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(("POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode())
        s.sendall(memoryview(body))
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
        s.close()
        out[i] = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else "no reply"
    except Exception as e:  # noqa: BLE001 - the kind of failure is the result
        out[i] = type(e).__name__


def flood(host, port, n, body, timeout=90):
    """Returns ({status or error: count}, seconds)."""
    start = threading.Barrier(n)
    out = [None] * n
    ts = [threading.Thread(target=upload, args=(host, port, body, start, out, i, timeout))
          for i in range(n)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    counts = {}
    for o in out:
        counts[o] = counts.get(o, 0) + 1
    return counts, time.time() - t0


def main():
    host, _, port = sys.argv[1].rpartition(":")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    w, h = (int(v) for v in (sys.argv[3] if len(sys.argv) > 3 else "2200x2100").split("x"))
    body = big_png(w, h)
    counts, secs = flood(host, int(port), n, body)
    print("flood: %d uploads of %.1f MB: %s in %.1f s" % (n, len(body) / 1e6, counts, secs))
    bad = {k: v for k, v in counts.items() if k not in (200, 503)}
    return 1 if bad or not counts.get(200) else 0


if __name__ == "__main__":
    sys.exit(main())
