#!/bin/sh
# bench/table.sh - `make bench`: our engine alone, one thread pinned to one core, batch 1 and
# 8, for the synthetic 1x g=1,2,3,4,8 models and the real 0.5x megvii models. Prints median ms
# per image, GFLOP/s and the share of the FMA peak measured by `shufflenet bench`.
# Env: SN_BUILD (build), SN_SHARED (../shared), BENCH_ITERS (30), BENCH_CORE (1),
# BENCH_BATCHES ("1 8").
set -e
cd "$(dirname "$0")/.."
. bench/models.sh
build=${SN_BUILD:-build}
iters=${BENCH_ITERS:-30}
core=${BENCH_CORE:-1}
batches=${BENCH_BATCHES:-1 8}
pin=""
command -v taskset >/dev/null && pin="taskset -c $core"
models=$(sn_bench_models)
printf '%-9s %5s %10s %10s %8s %7s  %s\n' config batch ms/image images/s GFLOP/s %peak isa
echo "$models" | while read -r name file onnx; do
    for b in $batches; do
        $pin "$build/shufflenet" bench --model "$file" --batch "$b" --iterations "$iters" --json |
            python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%-9s %5d %10.3f %10.1f %8.1f %6.0f%%  %s" % (sys.argv[1], r["batch"], r["ms_per_image"],
      r["images_per_s"], r["gflops"], r["pct_peak"], r["isa"]))' "$name"
    done
done
