#!/usr/bin/env bash
# long.sh - long fuzzing runs measured in CPU time: every target runs in chunks of at most
# 600 s (libFuzzer, nice 19, one chain of targets per CPU) until its CPU time (user + sys,
# /usr/bin/time) in BUILD/ledger.txt reaches SECONDS. The ledger survives restarts, so a run
# can be stopped and taken up again later. Needs the binaries and seeded corpora of
# `make fuzz FUZZ_SECONDS=1`.
#
# Usage: tests/fuzz/long.sh [SECONDS [TARGET ...]]   (3600, every target in BUILD)
# Pause (e.g. for a benchmark): touch BUILD/paused; pkill -INT -f BUILD/fuzz_   (SIGINT, not
# SIGSTOP: a stopped libFuzzer reports its wall-clock alarm as a timeout on resume); resume:
# rm BUILD/paused. Environment: FUZZ_BUILD (build/fuzz).
set -uo pipefail
B=${FUZZ_BUILD:-build/fuzz}
NEED=${1:-3600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for t in "$B"/fuzz_*; do targets+=("${t##*/fuzz_}"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "long.sh: no fuzz_* in $B (make fuzz FUZZ_SECONDS=1)" >&2; exit 2; }
L=$B/ledger.txt
mkdir -p "$B/long"
touch "$L"

used() { awk -v t="$1" '$1 == t { s += $2 } END { printf "%d", s }' "$L"; }

chain() { # CPU TARGET...
    local cpu=$1 t i rc c left chunk
    shift
    for t in "$@"; do
        i=$(find "$B/long" -name "$t.*.log" | wc -l)
        while [ "$(used "$t")" -lt "$NEED" ]; do
            while [ -f "$B/paused" ]; do sleep 2; done
            left=$((NEED - $(used "$t")))
            chunk=$((left < 600 ? left + 5 : 600))
            /usr/bin/time -f "%U %S" -o "$B/long/$t.$i.time" nice -n 19 taskset -c "$cpu" \
                "$B/fuzz_$t" -max_total_time=$chunk -max_len=4000000 -rss_limit_mb=2048 \
                -timeout=20 -print_final_stats=1 -artifact_prefix="$B/crash-$t-" \
                "$B/corpus/$t" >"$B/long/$t.$i.log" 2>&1
            rc=$?
            c=$(tail -1 "$B/long/$t.$i.time" | awk '{ printf "%d", $1 + $2 }')
            echo "$t $c chunk$i rc$rc" >>"$L"
            echo "[$(date +%T)] $t: chunk $i, exit $rc, $c s CPU, $(used "$t")/$NEED s"
            if [ $rc -ne 0 ] && ! grep -q 'run interrupted' "$B/long/$t.$i.log"; then
                echo "long.sh: $t FAILED, see $B/long/$t.$i.log and $B/crash-$t-*" >&2
                return 1
            fi
            i=$((i + 1))
        done
    done
}

ncpu=$(nproc)
status=0
pids=()
for ((k = 0; k < ncpu && k < ${#targets[@]}; k++)); do
    mine=()
    for ((j = k; j < ${#targets[@]}; j += ncpu)); do mine+=("${targets[j]}"); done
    chain "$k" "${mine[@]}" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
for t in "${targets[@]}"; do echo "$t: $(used "$t") s CPU in $L"; done
exit $status
