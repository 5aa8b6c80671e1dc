#!/usr/bin/env bash
# decode-ab-pair.sh - A/B of two builds' 1/8 decoders: runs OLD and NEW build/decode-ab one after
# the other, ROUNDS times, on CPU 1; each reports its decoder's speed relative to libjpeg-turbo
# in its own process, so drift between the runs cancels in the ratio of the two ratios. Prints
# per file the medians and the median per-round NEW/OLD.
# Usage: bench/decode-ab-pair.sh OLD/decode-ab NEW/decode-ab ROUNDS FILE.jpg...
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
old=$1 new=$2 rounds=$3
shift 3
for _ in $(seq "$rounds"); do
    taskset -c 1 "$old" --rounds 5 "$@" | awk '{gsub("x", "", $NF); print "old", NR, $NF}'
    taskset -c 1 "$new" --rounds 5 "$@" | awk '{gsub("x", "", $NF); print "new", NR, $NF}'
done | python3 -c '
import statistics as st, sys
d = {}
for line in sys.stdin:
    w, i, v = line.split()
    d.setdefault((w, int(i)), []).append(float(v))
names = sys.argv[1:]
for i in range(1, len(names) + 1):
    o, n = d[("old", i)], d[("new", i)]
    print("%s: old %.2fx libjpeg, new %.2fx, new/old %.3f"
          % (names[i - 1], st.median(o), st.median(n), st.median([b / a for a, b in zip(o, n)])))
' "$@"
