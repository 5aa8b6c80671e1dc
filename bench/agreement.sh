#!/usr/bin/env bash
# agreement.sh - how much `fast` preprocessing changes the answers: every image in
# ../shared/images through `shufflenet classify --preprocess exact` and `--preprocess fast`
# (megvii g3 0.5x and g8 0.5x), top-1 equal, top-5 equal as a set and in order, the exact
# top-1 inside fast's top-5, and the largest softmax difference of the exact top-1 class.
# Usage: bench/agreement.sh   (SN_BUILD, SN_SHARED)
set -euo pipefail
B=${SN_BUILD:-build}
SHARED=${SN_SHARED:-../shared}
tmp=$(mktemp -d /tmp/sn-agree.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for g in 3 8; do
    "$B/shufflenet" convert "$SHARED/models/megvii-shufflenet-v1-g$g-0.5x.pth.tar" "$tmp/g$g.safetensors" >/dev/null 2>&1
    for mode in exact fast; do
        "$B/shufflenet" classify --model "$tmp/g$g.safetensors" --top-k 5 --json --preprocess $mode \
            "$SHARED"/images/*.jpg "$SHARED"/images/*.png >"$tmp/g$g-$mode.json" 2>"$tmp/g$g-$mode.err" || true
    done
done
python3 - "$tmp" <<'PY'
import json, os, sys
tmp = sys.argv[1]
for g in (3, 8):
    ex = {os.path.basename(r["file"]): r for r in json.load(open("%s/g%d-exact.json" % (tmp, g)))}
    fa = {os.path.basename(r["file"]): r for r in json.load(open("%s/g%d-fast.json" % (tmp, g)))}
    n = t1 = t5set = t5ord = inside = 0
    dmax, diff = 0.0, []
    for f in sorted(ex):
        a = [c["index"] for c in ex[f]["top_k"]]
        b = [c["index"] for c in fa[f]["top_k"]]
        n += 1
        t1 += a[0] == b[0]
        t5set += set(a) == set(b)
        t5ord += a == b
        inside += a[0] in b
        sa = ex[f]["top_k"][0]["score"]
        sb = next((c["score"] for c in fa[f]["top_k"] if c["index"] == a[0]), 0.0)
        dmax = max(dmax, abs(sa - sb))
        if a[0] != b[0] or set(a) != set(b):
            diff.append("%s (%dx%d): exact %s, fast %s" % (f, ex[f]["width"], ex[f]["height"], a, b))
    print("g%d 0.5x, %d decodable images: top-1 equal %d/%d, top-5 equal as a set %d/%d (in order %d), "
          "exact top-1 in fast top-5 %d/%d, max |d score| of the exact top-1 %.3f"
          % (g, n, t1, n, t5set, n, t5ord, inside, n, dmax))
    for d in diff:
        print("   ", d)
PY
