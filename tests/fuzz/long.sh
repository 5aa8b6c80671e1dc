#!/usr/bin/env bash
# long.sh - long fuzzing runs measured in CPU time: one worker per CPU takes chunks of at
# most 600 s (libFuzzer, nice 19, pinned to its CPU), always of the target with the most CPU
# time still to do, until every target's CPU time (user + sys, /usr/bin/time) in
# BUILD/ledger.txt reaches SECONDS. Two workers may run the same target at once (on the same
# corpus), so the CPUs stay busy to the end. The ledger survives restarts, so a run can be
# stopped and taken up again later. Needs the binaries and seeded corpora of
# `make fuzz FUZZ_SECONDS=1`.
#
# Usage: tests/fuzz/long.sh [SECONDS [TARGET ...]]   (3600, every target in BUILD)
# Pause (e.g. for a benchmark): touch BUILD/paused; pkill -INT -f BUILD/fuzz_   (SIGINT, not
# SIGSTOP: a stopped libFuzzer reports its wall-clock alarm as a timeout on resume); resume:
# rm BUILD/paused. Environment: FUZZ_BUILD (build/fuzz), FUZZ_JOBS (nproc), FUZZ_CHUNK (600).
set -uo pipefail
B=${FUZZ_BUILD:-build/fuzz}
NEED=${1:-3600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for t in "$B"/fuzz_*; do targets+=("${t##*/fuzz_}"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "long.sh: no fuzz_* in $B (make fuzz FUZZ_SECONDS=1)" >&2; exit 2; }
for t in "${targets[@]}"; do
    [ -x "$B/fuzz_$t" ] || { echo "long.sh: no $B/fuzz_$t" >&2; exit 2; }
done
CHUNK=${FUZZ_CHUNK:-600}
L=$B/ledger.txt
R=$B/long
mkdir -p "$R"
touch "$L"
rm -f "$R"/run.* "$R/failed"

used() { awk -v t="$1" '$1 == t { s += $2 } END { printf "%d", s }' "$L"; }

# pick CPU: under the lock, choose the target with the most CPU time left (counting chunks
# that other workers are running), claim a chunk of it in $R/run.CPU and a log index; prints
# "target seconds index", nothing when all is done.
pick() {
    local cpu=$1 t left best="" bestleft=0 chunk i
    for t in "${targets[@]}"; do
        left=$((NEED - $(used "$t") - $(cat "$R"/run.* 2>/dev/null |
            awk -v t="$t" '$1 == t { s += $2 } END { printf "%d", s }')))
        if [ "$left" -gt "$bestleft" ]; then best=$t; bestleft=$left; fi
    done
    [ -n "$best" ] || return 0
    chunk=$((bestleft < CHUNK ? bestleft + 5 : CHUNK))
    i=$(find "$R" -name "$best.*.log" | wc -l)
    : >"$R/$best.$i.log"
    echo "$best $chunk" >"$R/run.$cpu"
    echo "$best $chunk $i"
}

worker() { # CPU
    local cpu=$1 t chunk i rc c
    while [ ! -f "$R/failed" ]; do
        while [ -f "$B/paused" ]; do sleep 2; done
        read -r t chunk i < <({ flock 9 && pick "$cpu"; } 9>"$R/.lock")
        [ -n "${t:-}" ] || return 0
        /usr/bin/time -f "%U %S" -o "$R/$t.$i.time" nice -n 19 taskset -c $((cpu % ncpu)) \
            "$B/fuzz_$t" -max_total_time="$chunk" -max_len=4000000 -rss_limit_mb=2048 \
            -timeout=20 -print_final_stats=1 -artifact_prefix="$B/crash-$t-" \
            "$B/corpus/$t" >"$R/$t.$i.log" 2>&1
        rc=$?
        c=$(tail -1 "$R/$t.$i.time" | awk '{ printf "%d", $1 + $2 }')
        echo "$t $c chunk$i rc$rc" >>"$L"
        rm -f "$R/run.$cpu"
        echo "[$(date +%T)] cpu$cpu $t: chunk $i, exit $rc, $c s CPU, $(used "$t")/$NEED s"
        if [ $rc -ne 0 ] && ! grep -q 'run interrupted' "$R/$t.$i.log"; then
            echo "long.sh: $t FAILED, see $R/$t.$i.log and $B/crash-$t-*" >&2
            touch "$R/failed"
            return 1
        fi
    done
    return 1
}

ncpu=$(nproc)
jobs=${FUZZ_JOBS:-$ncpu}
status=0
pids=()
for ((k = 0; k < jobs; k++)); do
    worker "$k" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
for t in "${targets[@]}"; do echo "$t: $(used "$t") s CPU in $L"; done
exit $status
