#!/usr/bin/env bash
# bench/soak.sh - `make soak`: shufflenet-server overloaded for a long time must not leak,
# fail or crash.
#
# Starts the server on 127.0.0.1 (trained megvii g3 0.5x when ../shared has it, else a
# synthetic g3 0.5x), measures its saturation (closed loop, SOAK_SAT_SECONDS), then drives it
# open loop with build/shufflenet-loadgen at SOAK_FACTOR x saturation for SOAK_SECONDS,
# sampling the server's RSS every second. Passes when:
#   - every request got an answer, each 200 or 503 (no 500, no other status, no connection
#     error or timeout), and the access log agrees (no 500 in it);
#   - RSS after the warm-up (the first SOAK_WARMUP_SECONDS) does not keep growing: it fails
#     when it grew by 5% or more (SOAK_RSS_GROWTH_PCT; median of the last 5 samples vs median
#     of the 5 samples that end the warm-up) *and* grew in both halves of the window (each by
#     a quarter of the limit or more). A leak grows all the time; a single step (a malloc
#     arena or a burst of connections reaching a new high-water mark once, seen as +2.4 MiB
#     at one second of a 60 s run, flat before and after) is reported but does not fail;
#   - the server is alive throughout, and exits 0 on SIGTERM afterwards.
# Writes $SOAK_OUT/soak-rss.csv (seconds,rss_kib) and soak-loadgen.json.
# Knobs (environment): SOAK_SECONDS (600), SOAK_WARMUP_SECONDS (10% of it, at least 10),
# SOAK_FACTOR (1.5), SOAK_SAT_SECONDS (5), SOAK_CONNECTIONS (32, closed loop: the plateau), SOAK_WORKERS
# (online CPUs), SOAK_IMAGE (default ../shared/images/caffe_cat.jpg, else a generated PNG),
# SOAK_OUT (results), SN_BUILD (build), SN_SHARED (../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SN_BUILD:-build}
SHARED=${SN_SHARED:-../shared}
SECONDS_TOTAL=${SOAK_SECONDS:-600}
WARM=${SOAK_WARMUP_SECONDS:-$(( SECONDS_TOTAL / 10 > 10 ? SECONDS_TOTAL / 10 : 10 ))}
FACTOR=${SOAK_FACTOR:-1.5}
SAT_S=${SOAK_SAT_SECONDS:-5}
CONNS=${SOAK_CONNECTIONS:-32}
GROWTH_MAX=${SOAK_RSS_GROWTH_PCT:-5}
OUT=${SOAK_OUT:-results}
SERVER=$BUILD/shufflenet-server
LG=$BUILD/shufflenet-loadgen
T0=$(date +%s)

say() { printf '[%4ds] soak: %s\n' $(($(date +%s) - T0)) "$*"; }
die() { echo "soak: FAIL: $*" >&2; exit 1; }

for b in "$SERVER" "$LG" "$BUILD/shufflenet"; do
    [ -x "$b" ] || die "$b is not built (run make first)"
done
[ "$WARM" -lt "$SECONDS_TOTAL" ] || die "SOAK_WARMUP_SECONDS ($WARM) must be < SOAK_SECONDS"

TMP=$(mktemp -d /tmp/sn-soak-XXXXXX)
server_pid=
sampler_pid=
cleanup() {
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$OUT"

# ---- model and image ------------------------------------------------------------------
ckpt="$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar"
if [ -f "$ckpt" ]; then
    "$BUILD/shufflenet" convert "$ckpt" "$TMP/g3.safetensors" >/dev/null
    model=(--model "g3=$TMP/g3.safetensors")
    what="trained megvii g3 0.5x"
else
    model=(--synth "g3=3:0.5:3")
    what="synthetic g3 0.5x (../shared not found)"
fi
IMG=${SOAK_IMAGE:-$SHARED/images/caffe_cat.jpg}
if [ ! -f "$IMG" ]; then
    IMG=$TMP/gradient.png
    python3 - "$IMG" <<'EOF'
import struct, sys, zlib
w, h = 480, 360
rows = b"".join(b"\0" + bytes((x * 255 // w, y * 255 // h, (x + y) % 256)[c]
                               for x in range(w) for c in range(3)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
EOF
fi

# ---- server ---------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workers=()
[ -n "${SOAK_WORKERS:-}" ] && workers=(--workers "$SOAK_WORKERS")
"$SERVER" --listen "127.0.0.1:$PORT" "${model[@]}" --default-model g3 "${workers[@]}" \
    >"$TMP/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$TMP/server.log"; die "server exited at start"; }
    sleep 0.1
done
say "server pid $server_pid on 127.0.0.1:$PORT, $what, image $IMG"

lg() { "$LG" --url "http://127.0.0.1:$PORT/classify" --image "$IMG" --quiet "$@"; }
json() { python3 -c "import json, sys; j = json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- saturation -----------------------------------------------------------------------
lg --connections "$CONNS" --duration 1 >/dev/null # warm-up
lg --connections "$CONNS" --duration "$SAT_S" --json >"$TMP/sat.json"
sat=$(json "$TMP/sat.json" 'round(j["ok_rps"], 1)')
rate=$(python3 -c "print(round($sat * $FACTOR, 1))")
python3 -c "import sys; sys.exit(0 if $sat > 0 else 1)" || die "no 200 at saturation"
say "saturation $sat req/s (closed loop, $CONNS connections); soak at $rate req/s open loop " \
    "for ${SECONDS_TOTAL}s (warm-up ${WARM}s)"

# ---- soak with RSS sampling -----------------------------------------------------------
(
    t=0
    echo "seconds,rss_kib"
    while kill -0 "$server_pid" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || true)
        [ -n "$rss" ] && echo "$t,$rss"
        sleep 1
        t=$((t + 1))
    done
) >"$OUT/soak-rss.csv" &
sampler_pid=$!
lg --rate "$rate" --duration "$SECONDS_TOTAL" --timeout 30 --json >"$OUT/soak-loadgen.json"
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
alive=1
kill -0 "$server_pid" 2>/dev/null || alive=0
curl -sf "http://127.0.0.1:$PORT/metrics" >"$TMP/metrics.txt" || true

# ---- verdict --------------------------------------------------------------------------
fail=0
python3 - "$OUT/soak-loadgen.json" "$OUT/soak-rss.csv" "$WARM" "$GROWTH_MAX" <<'EOF' || fail=1
import json, statistics, sys
j = json.load(open(sys.argv[1]))
warm, gmax = int(sys.argv[3]), float(sys.argv[4])
rows = [l.split(",") for l in open(sys.argv[2]).read().split()[1:]]
rss = [(int(t), int(k)) for t, k in rows]
st = {int(k): v for k, v in j["status_counts"].items()}
other = {k: v for k, v in st.items() if k not in (200, 503)}
errs = {k: v for k, v in j["error_counts"].items() if v}
print("soak: requests %d sent, %d answered: 200 x %d, 503 x %d, other %s; connection "
      "errors %s" % (j["sent"], j["completed"], st.get(200, 0), st.get(503, 0), other or "none",
                        errs or "none"))
print("soak: latency ms p50 %.1f p99 %.1f max %.1f; 200/s %.1f"
      % (j["p50_ms"], j["p99_ms"], j["max_ms"], j["ok_rps"]))
ok = True
if other or errs or j["completed"] != j["sent"]:
    print("soak: FAIL: not every request was answered 200 or 503")
    ok = False
after = [k for t, k in rss if t >= warm]
atwarm = [k for t, k in rss if warm - 5 < t <= warm]
if len(after) < 5 or not atwarm:
    print("soak: FAIL: too few RSS samples (%d)" % len(rss))
    sys.exit(1)
start, end = statistics.median(atwarm), statistics.median(after[-5:])
growth = (end - start) * 100.0 / start
print("soak: RSS MiB: first sample %.1f, end of warm-up %.1f, end %.1f, max %.1f -> growth "
      "after warm-up %+.2f%% (limit %g%%), %d samples"
      % (rss[0][1] / 1024, start / 1024, end / 1024, max(k for _, k in rss) / 1024, growth, gmax,
         len(rss)))
# growth in each half of the window after the warm-up (medians of 3 samples at its ends)
mid = len(after) // 2
at_mid = statistics.median(after[max(0, mid - 3):mid])
g1 = (at_mid - start) * 100.0 / start
g2 = (end - at_mid) * 100.0 / start
print("soak: RSS growth first half %+.2f%%, second half %+.2f%%" % (g1, g2))
if growth >= gmax and g1 >= gmax / 4 and g2 >= gmax / 4:
    print("soak: FAIL: RSS grew %.2f%% after the warm-up, in both halves of it" % growth)
    ok = False
elif growth >= gmax:
    print("soak: RSS grew %.2f%% in one step (one half flat): a high-water mark, not a leak"
          % growth)
sys.exit(0 if ok else 1)
EOF
[ "$alive" = 1 ] || { echo "soak: FAIL: the server died"; tail -20 "$TMP/server.log"; fail=1; }
if grep -q ' 500 [0-9]* ' "$TMP/server.log"; then
    echo "soak: FAIL: 500 in the access log"; fail=1
fi
logged=$(grep -cE '^POST /classify (200|503) ' "$TMP/server.log" || true)
say "access log: $logged classify requests answered 200/503"
if [ "$alive" = 1 ]; then
    kill -TERM "$server_pid"
    rc=0
    wait "$server_pid" || rc=$?
    server_pid=
    [ "$rc" = 0 ] || { echo "soak: FAIL: server exit status $rc after SIGTERM"; fail=1; }
fi
for mark in "WARNING: ThreadSanitizer" "ERROR: AddressSanitizer" "runtime error:" \
    "ERROR: LeakSanitizer"; do
    if grep -q "$mark" "$TMP/server.log"; then
        echo "soak: FAIL: sanitizer report in the server log"; fail=1
    fi
done
[ "$fail" = 0 ] || die "see above"
say "PASS ($OUT/soak-rss.csv, $OUT/soak-loadgen.json)"
