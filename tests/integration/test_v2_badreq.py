#!/usr/bin/env python3
"""Bad-request catalog for the v2 (Open Inference Protocol) API: one real server, one case per
hostile or malformed inference request. Each case checks the status and that the message
({"error": "..."}, validated against the OpenAPI schema by test_v2.v2) names the problem.
After every case /v2/health/live must answer 200; at the end the log holds no 500 and the
server exits 0 on SIGTERM (sanitizer builds: no report).

Standard library only; run by tests/integration/run.sh (same environment as test_server.py).
"""
import base64
import json
import math
import re
import struct
import sys

import test_v2
from test_server import G3, G8, Server, make_png, run_suite
from test_v2 import image_input, infer, v2

PNG = make_png(64, 48)
S224 = 3 * 224 * 224
INFER = "/v2/models/g3/infer"


def tensor(n=1, value=0.5):
    return struct.pack("<f", value) * (n * S224)


def one_image(**over):
    inp = {"name": "image", "datatype": "BYTES", "shape": [1],
           "data": [base64.b64encode(PNG).decode()]}
    inp.update(over)
    return {"inputs": [inp]}


def one_tensor(**over):
    inp = {"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
           "parameters": {"binary_data_size": 4 * S224}}
    inp.update(over)
    return {"inputs": [inp]}


def img_req(images, prefix=True):
    """A binary BYTES request of these images: (header, blobs)."""
    inp, blobs = image_input(images, prefix=prefix)
    return {"inputs": [inp]}, blobs


def raw_post(S, body, headers=None, path=INFER):
    return v2(S, "POST", path, body, headers or {})


def png_claiming(w, h):
    """A PNG whose IHDR claims w x h (a pixel bomb: refused from the header)."""
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


# Each case: (name, expected status, a regex the error message must match, fn(S) -> response).
CASES = [
    ("unknown input name", 400, r'unknown input "pixels"',
     lambda S: infer(S, one_image(name="pixels"))),
    ("image with datatype FP32", 400, r'"image": datatype must be BYTES, got "FP32"',
     lambda S: infer(S, one_image(datatype="FP32"))),
    ("input with datatype INT8", 400, r'"input": datatype must be FP32, got "INT8"',
     lambda S: infer(S, one_tensor(datatype="INT8"), [tensor()])),
    ("input with shape [1, 3, 100, 100]", 400, r"shape must be \[N, 3, 224, 224\], got \[1, 3, 100, 100\]",
     lambda S: infer(S, one_tensor(shape=[1, 3, 100, 100]), [tensor()])),
    ("image with shape [1, 2]", 400, r"shape must be \[N\] or \[N, 1\], got \[1, 2\]",
     lambda S: infer(S, one_image(shape=[1, 2]))),
    ("negative dimension", 400, r"every dimension must be an integer >= 0",
     lambda S: infer(S, one_image(shape=[-1]))),
    ("batch 0", 400, r"batch \(shape\[0\]\) must be at least 1",
     lambda S: infer(S, one_image(shape=[0], data=[]))),
    ("batch 17, over max_batch_size 16", 400, r"batch 17 is over this model's limit of 16",
     lambda S: infer(S, one_image(shape=[17], data=[base64.b64encode(PNG).decode()] * 17))),
    ("FP32 JSON data with 100 values", 400, r"needs 150528 values, data has 100",
     lambda S: infer(S, {"inputs": [{"name": "input", "datatype": "FP32",
                                     "shape": [1, 3, 224, 224], "data": [0.5] * 100}]})),
    ("FP32 JSON data with a string", 400, r"data element 1 is not a number",
     lambda S: infer(S, {"inputs": [{"name": "input", "datatype": "FP32",
                                     "shape": [1, 3, 224, 224], "data": [0.5, "x"]}]})),
    ("FP32 JSON value 1e39", 400, r"out of the FP32 range",
     lambda S: infer(S, {"inputs": [{"name": "input", "datatype": "FP32",
                                     "shape": [1, 3, 224, 224], "data": [1e39] * S224}]})),
    ("FP32 binary with a NaN", 400, r"element 7 is not a finite number",
     lambda S: infer(S, one_tensor(), [tensor()[:28] + struct.pack("<f", math.nan)
                                       + tensor()[32:]])),
    ("BYTES shape [2] with one string", 400, r"shape says 2 images, data has 1",
     lambda S: infer(S, one_image(shape=[2]))),
    ("BYTES data element a number", 400, r"data element 0 is not a string",
     lambda S: infer(S, one_image(data=[12]))),
    ("bad base64", 400, r"data element 0 is not valid base64",
     lambda S: infer(S, one_image(data=["iVBOR*w0KGgo="]))),
    ("binary_data_size beyond the body", 400, r"binary_data_size 999999 is more than the \d+ bytes",
     lambda S: infer(S, one_image(data=None, parameters={"binary_data_size": 999999}),
                     [struct.pack("<I", len(PNG)) + PNG])),
    ("binary bytes left over", 400, r"\d+ bytes of binary data follow the JSON header, but .* add up to \d+",
     lambda S: infer(S, one_image(data=None, parameters={"binary_data_size": len(PNG) + 4}),
                     [struct.pack("<I", len(PNG)) + PNG + b"extra"])),
    ("FP32 binary_data_size for another shape", 400, r"binary_data_size is 4 bytes, .* needs 602112",
     lambda S: infer(S, one_tensor(parameters={"binary_data_size": 4}), [b"\0" * 4])),
    ("BYTES [2] binary without length prefixes", 400, r"is not 2 elements, each after its 4-byte",
     lambda S: infer(S, *img_req([PNG, PNG], prefix=False))),
    ("Inference-Header-Content-Length past the body", 400, r"Inference-Header-Content-Length 5000 is more than",
     lambda S: raw_post(S, b"{}", {"Inference-Header-Content-Length": "5000"})),
    ("Inference-Header-Content-Length not a number", 400, r"must be a byte count",
     lambda S: raw_post(S, b"{}", {"Inference-Header-Content-Length": "12abc"})),
    ("binary_data_size without the header", 400, r"needs the Inference-Header-Content-Length",
     lambda S: raw_post(S, json.dumps(one_tensor()).encode())),
    ("data and binary_data_size both", 400, r"give data or binary_data_size, not both",
     lambda S: infer(S, one_image(parameters={"binary_data_size": 4}), [b"\0" * 4])),
    ("input without data", 400, r'input "image": no data',
     lambda S: infer(S, {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}]})),
    ("two inputs", 400, r"exactly one input per request .*got 2",
     lambda S: infer(S, {"inputs": one_image()["inputs"] * 2})),
    ("no inputs key", 400, r"inputs is missing",
     lambda S: infer(S, {"id": "x"})),
    ("unknown output name", 400, r'unknown output "scores"',
     lambda S: infer(S, dict(one_image(), outputs=[{"name": "scores"}]))),
    ("an output asked for twice", 400, r'output "logits" is asked for twice',
     lambda S: infer(S, dict(one_image(), outputs=[{"name": "logits"}, {"name": "logits"}]))),
    ("classification 0", 400, r"classification must be an integer in 1..1000",
     lambda S: infer(S, dict(one_image(), outputs=[{"name": "logits",
                                                    "parameters": {"classification": 0}}]))),
    ("classification \"5\" (a string)", 400, r"classification must be an integer",
     lambda S: infer(S, dict(one_image(), outputs=[{"name": "logits",
                                                    "parameters": {"classification": "5"}}]))),
    ("binary_data_output \"yes\"", 400, r"parameters.binary_data_output must be true or false",
     lambda S: infer(S, dict(one_image(), parameters={"binary_data_output": "yes"}))),
    ("id a number", 400, r"id must be a string",
     lambda S: infer(S, dict(one_image(), id=42))),
    ("body not JSON", 400, r"request JSON: ",
     lambda S: raw_post(S, b"inputs: [image]")),
    ("JSON array at the top", 400, r"must be a JSON object",
     lambda S: raw_post(S, b"[1, 2]")),
    ("duplicate key", 400, r"duplicate object key",
     lambda S: raw_post(S, b'{"inputs": [], "inputs": []}')),
    ("empty body", 400, r"empty request",
     lambda S: raw_post(S, b"")),
    ("JSON nested 100 deep", 400, r"nests deeper than 32",
     lambda S: raw_post(S, b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}")),
    ("more values than any valid request", 400, r"holds more than \d+ values",
     lambda S: raw_post(S, b'{"inputs": [' + b"0," * 2500000 + b"0]}")),
    ("base64 of a text file", 415, r'input "image" element 0: ',
     lambda S: infer(S, one_image(data=[base64.b64encode(b"hello, world").decode()]))),
    ("a JPEG of junk", 400, r"(?i)jpeg|invalid|corrupt",
     lambda S: infer(S, *img_req([b"\xff\xd8\xff\xe0" + b"\x13" * 3000]))),
    ("a 20000x20000 PNG (pixel budget)", 413, r"(?i)pixels",
     lambda S: infer(S, *img_req([png_claiming(20000, 20000)]))),
    ("an empty image element", 400, r'element 0: ',
     lambda S: infer(S, *img_req([b""]))),
    ("Content-Encoding: gzip", 415, r'Content-Encoding "gzip" is not supported',
     lambda S: infer(S, one_image(), extra={"Content-Encoding": "gzip"})),
    ("unknown model", 404, r'unknown model "nope"',
     lambda S: infer(S, one_image(), model="nope")),
    ("unknown version", 404, r'has no version "7"',
     lambda S: infer(S, one_image(), path="/v2/models/g3/versions/7/infer")),
    ("GET .../infer", 405, r"use POST",
     lambda S: v2(S, "GET", INFER)),
    ("unknown request and output parameters are ignored", 200, None,
     lambda S: infer(S, dict(one_image(), parameters={"priority": 3, "x": "y"},
                             outputs=[{"name": "logits", "parameters": {"foo": True}}]))),
]


def main():
    only = sys.argv[1:]
    test_v2.start_schema()
    S = Server("--model", "g3=" + G3, "--model", "g8=" + G8, "--workers", "1")

    def case(status, msg, fn):
        st, _, body, _ = fn(S)
        assert st == status, "expected %d, got %d %s" % (status, st, body)
        if msg:
            assert re.search(msg, body["error"]), "message %r does not match %r" % (
                body["error"], msg)
        assert v2(S, "GET", "/v2/health/live")[0] == 200, "not live after the case"
        assert S.p.poll() is None, "the server died"
    cases = [("%-50s" % name, lambda a=(status, msg, fn): case(*a),
              " -> %d%s" % (status, " /%s/" % msg if msg else ""))
             for name, status, msg, fn in CASES if not only or any(o in name for o in only)]
    try:
        return run_suite(S, cases, "v2 bad-request catalog: ")
    finally:
        if test_v2.SCHEMA:
            test_v2.SCHEMA.close()


if __name__ == "__main__":
    sys.exit(main())
