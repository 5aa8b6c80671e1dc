#!/usr/bin/env python3
"""bench/v2-bench.py - the v2 (Open Inference Protocol) API against /classify, closed loop at
saturation, interleaved rounds on one server, medians.

Pairs (each round runs A then B, both with the same images, for --seconds each):
  bytes: /classify raw-body uploads  vs  v2 binary BYTES requests (one image each, asking for
         "probabilities" with classification 5 - the same answer /classify gives)
  fp32:  v2 JSON FP32 tensors        vs  v2 binary FP32 tensors (the tensors made by
         `shufflenet preprocess` from the same images)
Requests are built here and sent by shufflenet-loadgen --request (v2) or --image (/classify).
Prints each round's 2xx/s and the server's CPU time per 2xx response (process_cpu_seconds_total
from /metrics: on a shared machine the steadier measure of cost), and per pair the medians and
the medians of the per-round ratios (B / A).

usage: bench/v2-bench.py [--rounds R] [--seconds S] [--connections C] [--pairs bytes,fp32]
env: SN_BUILD (build), SN_SHARED (../shared), SN_MODEL (a .safetensors; default: the megvii
g3 0.5x converted from ../shared into a temporary folder)
"""
import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("SN_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("SN_SHARED", os.path.join(ROOT, "..", "shared"))
IMAGES = ["caffe_cat.jpg", "opencv_baboon.jpg", "opencv_fruits.jpg", "sklearn_china.jpg",
          "skimage_rocket.jpg", "matplotlib_grace_hopper.jpg", "opencv_messi5.jpg",
          "qengineering_cat.jpg"]


def http_request(port, path, header, blob):
    """A complete keep-alive request: JSON header (+ binary part)."""
    j = json.dumps(header).encode()
    body = j + (blob or b"")
    head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port,
            "Content-Type: %s" % ("application/octet-stream" if blob else "application/json"),
            "Content-Length: %d" % len(body)]
    if blob:
        head.append("Inference-Header-Content-Length: %d" % len(j))
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def build(tmp, port, images, tensors):
    path = "/v2/models/g3/infer"
    out = [{"name": "probabilities", "parameters": {"classification": 5}}]
    files = {"bytes": [], "fp32_json": [], "fp32_bin": []}
    for i, data in enumerate(images):
        elem = struct.pack("<I", len(data)) + data
        h = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                         "parameters": {"binary_data_size": len(elem)}}], "outputs": out}
        files["bytes"].append(http_request(port, path, h, elem))
    for t in tensors:
        h = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                         "parameters": {"binary_data_size": len(t)}}], "outputs": out}
        files["fp32_bin"].append(http_request(port, path, h, t))
        vals = struct.unpack("<%df" % (len(t) // 4), t)
        h = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                         "data": [float("%.9g" % v) for v in vals]}], "outputs": out}
        files["fp32_json"].append(http_request(port, path, h, None))
    paths = {}
    for kind, reqs in files.items():
        paths[kind] = []
        for i, r in enumerate(reqs):
            p = os.path.join(tmp, "%s-%d.http" % (kind, i))
            with open(p, "wb") as f:
                f.write(r)
            paths[kind].append(p)
    return paths


def server_cpu(port):
    """The server's process_cpu_seconds_total."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read()
    for line in text.decode().splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    raise ValueError("no process_cpu_seconds_total")


def loadgen(port, args, seconds, conns):
    """One closed-loop run: (2xx/s, server CPU ms per 2xx response)."""
    cpu0 = server_cpu(port)
    cmd = [os.path.join(BUILD, "shufflenet-loadgen"), "--url", "http://127.0.0.1:%d" % port,
           "--connections", str(conns), "--duration", str(seconds), "--json", "--quiet"] + args
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    j = json.loads(r.stdout)
    if j["ok"] != j["completed"] or j["errors"]:
        print("  warning: %d responses, %d 2xx, statuses %s, errors %s" % (
            j["completed"], j["ok"], j["status_counts"], j["error_counts"]), file=sys.stderr)
    return j["ok_rps"], (server_cpu(port) - cpu0) * 1e3 / max(j["ok"], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--pairs", default="bytes,fp32")
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(SHARED, "images")):
        print("SKIP: ../shared not found (images and the trained model)")
        return 0
    tmp = tempfile.mkdtemp(prefix="sn-v2bench-")
    model = os.environ.get("SN_MODEL")
    if not model:
        model = os.path.join(tmp, "g3.safetensors")
        subprocess.run([os.path.join(BUILD, "shufflenet"), "convert", os.path.join(
            SHARED, "models", "megvii-shufflenet-v1-g3-0.5x.pth.tar"), model], check=True,
            capture_output=True)
    img_paths = [os.path.join(SHARED, "images", n) for n in IMAGES]
    images = [open(p, "rb").read() for p in img_paths]
    npy = os.path.join(tmp, "x.npy")
    subprocess.run([os.path.join(BUILD, "shufflenet"), "preprocess", "--model", model] +
                   img_paths + ["-o", npy], check=True)
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from v2_client import read_npy
    shape, raw = read_npy(npy)
    per = len(raw) // shape[0]
    tensors = [raw[i * per:(i + 1) * per] for i in range(shape[0])]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(tmp, "server.log"), "w")
    srv = subprocess.Popen([os.path.join(BUILD, "shufflenet-server"), "--listen",
                            "127.0.0.1:%d" % port, "--model", "g3=" + model,
                            "--log-format", "json"], stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % port, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        files = build(tmp, port, images, tensors)
        kinds = {"classify": ["--image"] + img_paths,
                 "v2_bytes": ["--request"] + files["bytes"],
                 "v2_fp32_json": ["--request"] + files["fp32_json"],
                 "v2_fp32_bin": ["--request"] + files["fp32_bin"]}
        pairs = {"bytes": ("classify", "v2_bytes"), "fp32": ("v2_fp32_json", "v2_fp32_bin")}
        cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                             capture_output=True, text=True).stdout.strip()
        print("v2-bench: %s, %d CPUs, %s; %d connections, %g s per run, %d rounds" % (
            cpu, os.cpu_count(), time.strftime("%Y-%m-%d %H:%M"), a.connections, a.seconds,
            a.rounds))
        for name in a.pairs.split(","):
            A, B = pairs[name]
            loadgen(port, kinds[A], 2, a.connections)  # warm-up
            ra, rb, ca, cb = [], [], [], []
            for r in range(a.rounds):
                for rates, cpus, kind in ((ra, ca, A), (rb, cb, B)):
                    rps, cpu = loadgen(port, kinds[kind], a.seconds, a.connections)
                    rates.append(rps)
                    cpus.append(cpu)
                print("  round %2d: %-12s %6.1f req/s %6.2f CPU ms/req   %-12s %6.1f req/s "
                      "%6.2f CPU ms/req   ratio %.3f" % (r + 1, A, ra[-1], ca[-1], B, rb[-1], cb[-1],
                                                       rb[-1] / ra[-1]), flush=True)
            med = statistics.median
            print("%s: median %s %.1f req/s (%.2f CPU ms/req), %s %.1f req/s (%.2f CPU ms/req);\n"
                  "  median of round ratios %s/%s: throughput %.3f, CPU per request %.3f" % (
                      name, A, med(ra), med(ca), B, med(rb), med(cb), B, A,
                      med(b / x for x, b in zip(ra, rb)), med(b / x for x, b in zip(ca, cb))),
                  flush=True)
    finally:
        srv.terminate()
        srv.wait(60)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
