#!/usr/bin/env python3
"""v2_client.py - classify images through shufflenet-server's Open Inference Protocol (KServe
v2) API, the way Triton-style clients talk: a JSON header followed by binary tensor data.

    tools/v2_client.py [--url http://127.0.0.1:8080] [--model g3] [--top-k 5] IMAGE...
    tools/v2_client.py --tensor X.npy          # FP32 [N,3,S,S], e.g. from shufflenet preprocess
    tools/v2_client.py --json IMAGE...         # base64 strings in JSON instead of binary

Images go as the BYTES input "image" [N] (each element: 4-byte little-endian length, then
the JPEG/PNG file); a .npy goes as the FP32 input "input". The answer asked for is the
"probabilities" output with Triton's classification extension (top K "value:index:label",
binary too), printed one line per class. Python standard library only.
"""
import argparse
import base64
import http.client
import json
import struct
import sys
import urllib.parse


def read_npy(path):
    """A float32 little-endian C-order .npy file: (shape, raw bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError("%s: not a .npy file" % path)
    hl, off = (struct.unpack("<H", data[8:10])[0], 10) if data[6] == 1 else \
        (struct.unpack("<I", data[8:12])[0], 12)
    header = data[off:off + hl].decode("latin-1")
    if "'<f4'" not in header or "'fortran_order': False" not in header:
        raise ValueError("%s: need float32 little-endian C order" % path)
    shape = tuple(int(x) for x in header.split("(")[1].split(")")[0].split(",") if x.strip())
    return shape, data[off + hl:]


def bytes_elements(items):
    """BYTES tensor data as the binary extension sends it: each element after its length."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def binary_request(header, blobs):
    """JSON header + binary parts: (body, json length for Inference-Header-Content-Length)."""
    j = json.dumps(header).encode()
    return j + b"".join(blobs), len(j)


def parse_response(headers, body):
    """(JSON header, {output name: list of values}) of a v2 response, JSON or binary."""
    hl = headers.get("inference-header-content-length")
    n = int(hl) if hl is not None else len(body)
    head = json.loads(body[:n])
    values, off = {}, n
    for o in head.get("outputs", []):
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            values[o["name"]] = o["data"]
            continue
        raw = body[off:off + size]
        off += size
        if o["datatype"] == "FP32":
            values[o["name"]] = list(struct.unpack("<%df" % (size // 4), raw))
        else:  # BYTES
            items, i = [], 0
            while i < len(raw):
                (ln,) = struct.unpack("<I", raw[i:i + 4])
                items.append(raw[i + 4:i + 4 + ln].decode())
                i += 4 + ln
            values[o["name"]] = items
    if off != len(body):
        raise ValueError("binary outputs add up to %d bytes, the body has %d" % (off, len(body)))
    return head, values


def infer(url, model, body, header_len=None, timeout=60):
    """POST /v2/models/{model}/infer: (status, lower-case headers, body bytes)."""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    h = {"Content-Type": "application/octet-stream" if header_len else "application/json"}
    if header_len is not None:
        h["Inference-Header-Content-Length"] = str(header_len)
    try:
        c.request("POST", "/v2/models/%s/infer" % model, body=body, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", help="JPEG/PNG files")
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="g3")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--tensor", help="a float32 [N,3,S,S] .npy to send as the FP32 input")
    ap.add_argument("--json", action="store_true", help="base64 in JSON instead of binary")
    a = ap.parse_args()
    if bool(a.images) == bool(a.tensor):
        ap.error("give IMAGE... or --tensor X.npy")
    out = [{"name": "probabilities",
            "parameters": {"classification": a.top_k, "binary_data": not a.json}}]
    if a.tensor:
        shape, raw = read_npy(a.tensor)
        names = ["%s[%d]" % (a.tensor, i) for i in range(shape[0])]
        inp = {"name": "input", "datatype": "FP32", "shape": list(shape)}
        if a.json:
            inp["data"] = list(struct.unpack("<%df" % (len(raw) // 4), raw))
            blobs = []
        else:
            inp["parameters"] = {"binary_data_size": len(raw)}
            blobs = [raw]
    else:
        files = []
        for p in a.images:
            with open(p, "rb") as f:
                files.append(f.read())
        names = a.images
        inp = {"name": "image", "datatype": "BYTES", "shape": [len(files)]}
        if a.json:
            inp["data"] = [base64.b64encode(b).decode() for b in files]
            blobs = []
        else:
            blobs = [bytes_elements(files)]
            inp["parameters"] = {"binary_data_size": len(blobs[0])}
    header = {"id": "v2_client", "inputs": [inp], "outputs": out}
    if blobs:
        body, hl = binary_request(header, blobs)
    else:
        body, hl = json.dumps(header).encode(), None
    st, h, data = infer(a.url, a.model, body, hl)
    if st != 200:
        sys.exit("v2_client: HTTP %d: %s" % (st, data.decode(errors="replace")))
    _, values = parse_response(h, data)
    top = values["probabilities"]
    for i, name in enumerate(names):
        print(name)
        for rank, item in enumerate(top[i * a.top_k:(i + 1) * a.top_k], 1):
            value, index, label = item.split(":", 2)
            print("  %d. %4s %-30s %s" % (rank, index, label, value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
