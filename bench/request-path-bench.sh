#!/usr/bin/env bash
# request-path-bench.sh - saturation throughput of the request path (issue 15): old and new
# servers (and the peer services) measured alternately in one run, on the same images, with
# the same closed-loop load, so drift on a shared machine hits them alike.
#
# Targets (each a server on 127.0.0.1 with 2 workers / 2 processes):
#   old        OLD_BUILD/shufflenet-server (default /work/baseline/build: main before issue 15)
#   main       MAIN_BUILD/shufflenet-server: main as merged, without this work (set MAIN_BUILD
#              to a build of it), to tell the request path's gain from the engine's
#   main-exact MAIN_BUILD/shufflenet-server --preprocess exact (an A/B of exact mode)
#   fast       SN_BUILD/shufflenet-server --preprocess fast
#   exact      SN_BUILD/shufflenet-server --preprocess exact
#   node       ../shared/peers/service/node (copied to .cache/peer-node, npm ci there)
#   python     ../shared/peers/service/python (Debian packages; see its README)
# Image sets: 640x480 and 4000x3000 JPEGs (quality 90) made from ../shared photos with netpbm +
# cjpeg. Each round runs every target on one set for BENCH_SECONDS (5) at BENCH_CONNECTIONS
# (16) connections; BENCH_ROUNDS (5) rounds; medians and per-round ratios to "old" printed,
# for throughput and for the server's CPU time per request (its process tree's user + system
# time over the run / requests answered), which other load on a shared machine disturbs less.
# Usage: bench/request-path-bench.sh [TARGET...]   (default: old fast exact; add node python)
# Env: SN_BUILD, OLD_BUILD, MAIN_BUILD, SN_SHARED, BENCH_SETS ("640 4000"). Traffic: 127.0.0.1
# only.
set -euo pipefail
B=${SN_BUILD:-build}
OLD=${OLD_BUILD:-/work/baseline/build}
SHARED=${SN_SHARED:-../shared}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-5}
SETS=${BENCH_SETS:-640 4000}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(old fast exact)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/sn-rp-bench.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

if ! command -v cjpeg >/dev/null || ! command -v pamscale >/dev/null; then
    apt-get install -y -qq --no-install-recommends netpbm libjpeg-turbo-progs >/dev/null
fi
"$B/shufflenet" convert "$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar" "$tmp/g3.safetensors" >/dev/null
for size in $SETS; do
    w=$size h=$((size * 3 / 4))
    mkdir -p "$tmp/set$size"
    n=0
    for src in skimage_coffee.png skimage_chelsea.png skimage_motorcycle_left.png opencv_fruits.jpg; do
        case "$src" in
            *.png) pngtopnm "$SHARED/images/$src" ;;
            *) djpeg "$SHARED/images/$src" ;;
        esac 2>/dev/null | pamscale -width "$w" -height "$h" 2>/dev/null |
            cjpeg -quality 90 >"$tmp/set$size/img$n.jpg"
        n=$((n + 1))
    done
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() { # target
    case "$1" in
        old | main | main-exact) bin=$OLD mode=()
                 [ "$1" = old ] || bin=${MAIN_BUILD:?set MAIN_BUILD to a build of main}
                 [ "$1" = main-exact ] && mode=(--preprocess exact)
                 "$bin/shufflenet-server" --listen 127.0.0.1:$port --model m="$tmp/g3.safetensors" \
                 --workers 2 "${mode[@]}" --log-format json 2>"$tmp/log" & ;;
        fast | exact) "$B/shufflenet-server" --listen 127.0.0.1:$port --model m="$tmp/g3.safetensors" \
                 --workers 2 --preprocess "$1" --log-format json 2>"$tmp/log" & ;;
        node) (cd "$ROOT/.cache/peer-node" && SHUFFLENET_SHARED=$(cd "$SHARED" && pwd) exec node server.js --port $port) \
                 >"$tmp/log" 2>&1 & ;;
        python) PEER_SHARED=$(cd "$SHARED" && pwd) sh "$SHARED/peers/service/python/run.sh" $port >"$tmp/log" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "request-path-bench: $1 did not start: $(tail -3 "$tmp/log")" >&2
    return 1
}
stop() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
    sleep 0.5
}
# CPU seconds (user + system) used so far by process $1 and all its descendants.
cpu_tree() {
    python3 - "$1" <<'PY'
import os, sys
root, hz = int(sys.argv[1]), os.sysconf("SC_CLK_TCK")
kids, cpu = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    kids.setdefault(int(f[1]), []).append(int(p))
    cpu[int(p)] = (int(f[11]) + int(f[12])) / hz
todo, total = [root], 0.0
while todo:
    q = todo.pop()
    total += cpu.get(q, 0.0)
    todo += kids.get(q, [])
print(total)
PY
}
lg() { "$B/shufflenet-loadgen" --url "http://127.0.0.1:$port" --quiet --json "$@"; }
field() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[sys.argv[1]])' "$1"; }

if printf '%s\n' "${targets[@]}" | grep -qx node && [ ! -d "$ROOT/.cache/peer-node/node_modules/sharp" ]; then
    mkdir -p "$ROOT/.cache" && cp -r "$SHARED/peers/service/node" "$ROOT/.cache/peer-node"
    (cd "$ROOT/.cache/peer-node" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --onnxruntime-node-install=skip \
        --no-audit --no-fund >/dev/null)
fi

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(date -u +%F)"
echo "closed loop, $CONNS connections, ${SECS}s per run, $ROUNDS rounds, targets: ${targets[*]}"
declare -A res cpu
for size in $SETS; do
    imgs=("$tmp/set$size"/*.jpg)
    for r in $(seq "$ROUNDS"); do
        line="set $size round $r:"
        for t in "${targets[@]}"; do
            start "$t" || continue
            lg --connections 4 --duration 1 --image "${imgs[@]}" >/dev/null # warm-up
            c0=$(cpu_tree "$pid")
            out=$(lg --connections "$CONNS" --duration "$SECS" --image "${imgs[@]}")
            c1=$(cpu_tree "$pid")
            thr=$(echo "$out" | field throughput_rps)
            st=$(echo "$out" | field status_counts)
            ms=$(python3 -c "print('%.2f' % (1000 * ($c1 - $c0) / max(1.0, $thr * $SECS)))")
            stop
            res[$size,$t]="${res[$size,$t]:-} $thr"
            cpu[$size,$t]="${cpu[$size,$t]:-} $ms"
            line="$line $t $(printf %.1f "$thr") (${ms} ms CPU/req)"
            case "$st" in *"'200'"*|*'"200"'*|*200*) ;; *) line="$line(statuses $st)" ;; esac
        done
        echo "$line"
    done
    for t in "${targets[@]}"; do
        med=$(python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print('%.1f' % statistics.median(v)) if v else print('n/a')" ${res[$size,$t]:-})
        ratio=$(python3 -c "
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
print('%.2f' % statistics.median([x / y for x, y in zip(a, b)]) if a and b else 'n/a')" "${res[$size,$t]:-}" "${res[$size,old]:-}")
        cmed=$(python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print('%.2f' % statistics.median(v)) if v else print('n/a')" ${cpu[$size,$t]:-})
        cratio=$(python3 -c "
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
print('%.2f' % statistics.median([y / x for x, y in zip(a, b)]) if a and b else 'n/a')" "${cpu[$size,$t]:-}" "${cpu[$size,old]:-}")
        echo "set ${size}: $t median $med req/s (per-round ratio to old $ratio x); server CPU $cmed ms/req (old/this $cratio x)"
    done
done
