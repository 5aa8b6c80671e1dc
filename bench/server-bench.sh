#!/usr/bin/env bash
# server-bench.sh - the service against the engine's own speed (issue 5's benchmark).
#
#  1. baseline: one thread decoding + preprocessing + classifying 640x480 JPEGs
#     (`shufflenet classify` over the same files, model load subtracted) -> images/s;
#  2. the server with 2 workers, closed loop at saturation over loopback -> req/s, and the
#     ratio to 2 x baseline;
#  3. open loop at 70% of that throughput (Poisson) -> p50 and p99.
# Usage: bench/server-bench.sh [MODEL.safetensors]   (default: the real megvii g3 0.5x from
# ../shared converted on the fly, else a synthetic 1x g3). Traffic goes to 127.0.0.1 only.
set -euo pipefail
B=${SN_BUILD:-build}
SHARED=${SN_SHARED:-../shared}
SECS=${BENCH_SECONDS:-15}
tmp=$(mktemp -d /tmp/sn-server-bench.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

model=${1:-}
if [ -z "$model" ]; then
    if [ -f "$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar" ]; then
        model=$tmp/g3.safetensors
        "$B/shufflenet" convert "$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar" "$model" 2>/dev/null
    else
        model=$tmp/g3.safetensors
        "$B/shufflenet" synth --groups 3 --width 1.0 --seed 1 -o "$model"
    fi
fi

# 640x480 JPEGs made from the project's own synthetic pattern (netpbm + cjpeg), or from
# ../shared photos when present.
if ! command -v cjpeg >/dev/null || ! command -v pamscale >/dev/null; then
    echo "server-bench: installing netpbm and libjpeg-turbo-progs (apt-get)" >&2
    apt-get install -y -qq --no-install-recommends netpbm libjpeg-turbo-progs >/dev/null
fi
n=0
for src in "$SHARED"/images/skimage_coffee.png "$SHARED"/images/skimage_chelsea.png \
           "$SHARED"/images/skimage_motorcycle_left.png "$SHARED"/images/opencv_fruits.jpg; do
    [ -f "$src" ] || continue
    case "$src" in
        *.png) pngtopnm "$src" ;;
        *) djpeg "$src" ;;
    esac 2>/dev/null | pamscale -width 640 -height 480 2>/dev/null | cjpeg -quality 90 >"$tmp/img$n.jpg"
    n=$((n + 1))
done
if [ $n = 0 ]; then
    pbmmake -gray 640 480 | pgmramp -diag 640 480 | cjpeg -quality 90 >"$tmp/img0.jpg" 2>/dev/null ||
        { echo "server-bench: cannot make a test JPEG" >&2; exit 1; }
    n=1
fi
images=("$tmp"/img*.jpg)

# 1. Single-thread baseline: classify K images in one process, minus the cost of one.
K=200
args=()
for i in $(seq $K); do args+=("${images[$((i % n))]}"); done
t1=$( { /usr/bin/time -f %e taskset -c 1 "$B/shufflenet" classify --model "$model" --top-k 1 "${images[0]}" >/dev/null; } 2>&1 | tail -1)
tk=$( { /usr/bin/time -f %e taskset -c 1 "$B/shufflenet" classify --model "$model" --top-k 1 "${args[@]}" >/dev/null; } 2>&1 | tail -1)
base=$(python3 -c "print(($K - 1) / ($tk - $t1))")
echo "baseline (1 thread, decode + preprocess + inference, 640x480 JPEG): $(printf %.1f "$base") images/s"

# 2. Server, 2 workers, closed loop at saturation.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$B/shufflenet-server" --listen 127.0.0.1:$port --model m="$model" --default-model m --workers 2 \
    --log-format json 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
"$B/shufflenet-loadgen" --url "http://127.0.0.1:$port" --connections 8 --duration 3 --quiet \
    --image "${images[@]}" >/dev/null # warm-up
closed=$("$B/shufflenet-loadgen" --url "http://127.0.0.1:$port" --connections 8 \
    --duration "$SECS" --quiet --json --image "${images[@]}")
thr=$(echo "$closed" | python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput_rps"])')
echo "server closed loop (2 workers, 8 connections, ${SECS}s): $(printf %.1f "$thr") req/s" \
     "= $(python3 -c "print('%.2f' % ($thr / (2 * $base)))") x (2 x baseline)"

# 3. Open loop at 70% of that.
rate=$(python3 -c "print(round(0.7 * $thr, 1))")
open=$("$B/shufflenet-loadgen" --url "http://127.0.0.1:$port" --rate "$rate" --poisson \
    --duration "$SECS" --quiet --json --image "${images[@]}")
echo "$open" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("server open loop at %.1f req/s (Poisson, %ss): p50 %.1f ms, p99 %.1f ms, p99/p50 %.2f, statuses %s"
      % (float(sys.argv[1]), sys.argv[2], r["p50_ms"], r["p99_ms"], r["p99_ms"] / r["p50_ms"],
         r["status_counts"]))' "$rate" "$SECS"
