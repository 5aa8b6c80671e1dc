# bench/models.sh - sourced by bench/table.sh and bench/compare-peers: makes the benchmark
# models in $SN_CACHE (default .cache/bench-models) and lists them as "name file onnx" lines
# on stdout: synthetic 1x g=1,2,3,4,8 (same architecture as ../shared/peers/onnx) and the real
# megvii 0.5x g3/g8 converted from ../shared when present.
sn_bench_models() {
    local build=${SN_BUILD:-build} shared=${SN_SHARED:-../shared}
    local dir=${SN_CACHE:-.cache/bench-models}
    mkdir -p "$dir" || return 1
    for g in 1 2 3 4 8; do
        local f=$dir/synth-g$g-1x.safetensors
        [ -s "$f" ] || "$build/shufflenet" synth --groups $g --width 1.0 --seed 1 -o "$f" \
            >/dev/null || return 1
        echo "1x-g$g $f $shared/peers/onnx/shufflenet_v1_g${g}_s1_dyn.onnx"
    done
    for g in 3 8; do
        local src=$shared/models/megvii-shufflenet-v1-g$g-0.5x.pth.tar
        local f=$dir/megvii-g$g-0.5x.safetensors
        [ -f "$src" ] || continue
        [ -s "$f" ] || "$build/shufflenet" convert "$src" "$f" >/dev/null || continue
        echo "0.5x-g$g $f $shared/models/onnx/megvii-shufflenet-v1-g$g-0.5x.onnx"
    done
}
