#!/usr/bin/env bash
# bench/loadtest.sh - latency vs group count (`make loadtest`).
#
# Starts shufflenet-server on 127.0.0.1 with synthetic 1x models for g = 1, 2, 3, 4, 8 (plus
# the trained megvii 0.5x g3/g8 when ../shared has them), then for each model:
#   1. finds its saturation throughput: closed loop, LOADTEST_CONNECTIONS connections;
#   2. runs open-loop steps (Poisson arrivals) at 10..90% of it; latency counts from each
#      request's intended send time, so queueing shows up in full.
# Writes results/latency-vs-groups.csv and three PNGs (gnuplot, bench/plot.gp). About 7
# minutes on a 2-core machine. Knobs (environment): LOADTEST_SAT_SECONDS (6),
# LOADTEST_STEP_SECONDS (5), LOADTEST_CONNECTIONS (32: the plateau), LOADTEST_STEPS ("10 20 ... 90"),
# LOADTEST_GROUPS ("1 2 3 4 8"), LOADTEST_IMAGE (default ../shared/images/caffe_cat.jpg, else
# a generated 320x240 PNG), LOADTEST_OUT (results), SN_BUILD (build), SN_SHARED (../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SN_BUILD:-build}
SHARED=${SN_SHARED:-../shared}
OUT=${LOADTEST_OUT:-results}
SAT_S=${LOADTEST_SAT_SECONDS:-6}
STEP_S=${LOADTEST_STEP_SECONDS:-5}
CONNS=${LOADTEST_CONNECTIONS:-32}
STEPS=${LOADTEST_STEPS:-10 20 30 40 50 60 70 80 90}
GROUPS_LIST=${LOADTEST_GROUPS:-1 2 3 4 8}
SERVER=$BUILD/shufflenet-server
LG=$BUILD/shufflenet-loadgen
T0=$(date +%s)

say() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
die() { echo "loadtest: $*" >&2; exit 1; }

for b in "$SERVER" "$LG" "$BUILD/shufflenet"; do
    [ -x "$b" ] || die "$b is not built (run make first)"
done
command -v gnuplot >/dev/null || die "gnuplot not found (Debian package gnuplot-nox; make deps)"
command -v curl >/dev/null || die "curl not found (make deps)"

TMP=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$OUT"

# ---- plots -------------------------------------------------------------------------------
# plot_csv CSV: PNGs from a results CSV (model rows in order; saturation rows give the bars,
# open-loop rows give one line per model). LOADTEST_PLOT_ONLY=1 just re-plots results/.
plot_csv() {
    local n
    n=$(awk -F, -v dir="$TMP" '
        NR == 1 { next }
        $5 == "saturation" {
            if ($16 < 1) next
            n++; printf "\"%s\" %s\n", $1, $16 > (dir "/saturation.dat")
            printf " \"g=%s, %sx (%s)\"", $2, $3, $4 > (dir "/titles")
            file[$1] = dir "/model" n ".dat"; next
        }
        ($1 in file) { print $7, $18, $20, $16 > file[$1] }
        END { print n + 0 }' "$1")
    [ "$n" -gt 0 ] || die "no model answered; nothing to plot"
    gnuplot -e "dir='$TMP'; out='$OUT'; n=$n; titles='$(cat "$TMP/titles")'" bench/plot.gp
    say "wrote $OUT/latency-p50-vs-load.png $OUT/latency-p99-vs-load.png $OUT/max-throughput-vs-groups.png"
}
if [ "${LOADTEST_PLOT_ONLY:-0}" = 1 ]; then
    plot_csv "$OUT/latency-vs-groups.csv"
    exit 0
fi

# ---- the request body ------------------------------------------------------------------
IMG=${LOADTEST_IMAGE:-$SHARED/images/caffe_cat.jpg}
if [ ! -f "$IMG" ]; then
    IMG=$TMP/loadtest.png
    python3 - "$IMG" <<'EOF'
import struct, sys, zlib
w, h = 320, 240
rows = b"".join(b"\0" + bytes(v for x in range(w) for v in (x * 255 // w, y * 255 // h, (x ^ y) & 255))
                for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
EOF
fi
say "request body: $IMG"

# ---- models ------------------------------------------------------------------------------
# Each entry: NAME GROUPS WIDTH WEIGHTS SERVER-FLAG
MODELS=()
for g in $GROUPS_LIST; do
    MODELS+=("g$g-1.0x-synth $g 1.0 synthetic --synth=g$g-1.0x-synth=$g:1.0")
done
for g in 3 8; do
    ckpt=$SHARED/models/megvii-shufflenet-v1-g$g-0.5x.pth.tar
    f=models/megvii-g$g-0.5x.safetensors
    if [ ! -f "$f" ] && [ -f "$ckpt" ]; then
        f=$TMP/megvii-g$g-0.5x.safetensors
        say "converting $ckpt"
        "$BUILD/shufflenet" convert "$ckpt" "$f" >"$TMP/convert.log" 2>&1 ||
            { cat "$TMP/convert.log"; die "conversion of $ckpt failed"; }
    fi
    [ -f "$f" ] && MODELS+=("g$g-0.5x-megvii $g 0.5 trained --model=g$g-0.5x-megvii=$f")
done
[ "${#MODELS[@]}" -gt 0 ] || die "no models (LOADTEST_GROUPS is empty?)"

# ---- the server --------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
flags=()
for m in "${MODELS[@]}"; do
    set -- $m
    flags+=("$5")
done
say "starting $SERVER on 127.0.0.1:$PORT with ${#MODELS[@]} models"
set -- ${MODELS[0]}
"$SERVER" --listen "127.0.0.1:$PORT" --default-model "$1" "${flags[@]}" >"$TMP/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$TMP/server.log"; die "the server exited"; }
    sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { tail -20 "$TMP/server.log"; die "server not ready after 60 s"; }
settings=$(curl -sf "http://127.0.0.1:$PORT/v1/models" | python3 -c '
import json, sys
try:
    m = json.load(sys.stdin)["models"][0]
    b = m.get("batching", {})
    print(", ".join("%s=%s" % kv for kv in sorted(b.items())) if isinstance(b, dict) else "")
except Exception:
    print("")') || true
say "server ready${settings:+ (batching: $settings)}"

# ---- measurements ----------------------------------------------------------------------
CSV=$OUT/latency-vs-groups.csv
# lg ARGS: one run; prints the loadgen's CSV row, and writes the CSV header once.
lg() {
    "$LG" --url "http://127.0.0.1:$PORT" --image "$IMG" --quiet --csv-header "$@" > "$TMP/one.csv"
    [ -s "$TMP/csv" ] || echo "model,groups,width,weights,load_pct,$(head -1 "$TMP/one.csv")" > "$TMP/csv"
    sed -n 2p "$TMP/one.csv"
}
: > "$TMP/csv"
col() { echo "$1" | awk -F, -v c="$2" '{print $c}'; } # loadgen CSV: 11 = ok_rps, 13 = p50_ms, 15 = p99_ms

for m in "${MODELS[@]}"; do
    set -- $m
    name=$1 groups=$2 width=$3 weights=$4
    lg --model "$name" --connections "$CONNS" --duration 1 >/dev/null # warm-up
    row=$(lg --model "$name" --connections "$CONNS" --duration "$SAT_S")
    sat=$(col "$row" 11)
    echo "$name,$groups,$width,$weights,saturation,$row" >> "$TMP/csv"
    say "$name: saturation $sat req/s (closed loop, $CONNS connections), p50 $(col "$row" 13) ms"
    if ! python3 -c "import sys; sys.exit(0 if $sat >= 1 else 1)"; then
        say "$name: no successful responses; skipping its open-loop steps"
        continue
    fi
    for p in $STEPS; do
        rate=$(python3 -c "print(round($sat * $p / 100, 3))")
        row=$(lg --model "$name" --rate "$rate" --poisson --duration "$STEP_S")
        echo "$name,$groups,$width,$weights,$p,$row" >> "$TMP/csv"
        say "$name: $p% = $rate req/s offered -> p50 $(col "$row" 13) ms, p99 $(col "$row" 15) ms, errors $(col "$row" 9)"
    done
done
mv "$TMP/csv" "$CSV"
say "wrote $CSV"

plot_csv "$CSV"
