#!/usr/bin/env bash
# kernel-ab.sh BASE [MODEL...] - this tree's kernels for one ISA against those of commit BASE,
# in one process (tests/perf/kernel-ab.c): BASE's engine/kernels_ISA.c is compiled with its
# table renamed and linked beside this build's, and the two run alternately, call by call. Without
# MODELs, the 0.5x g3 (when ../shared has it) and synthetic 1x g1 networks of
# bench/models.sh are timed after the kernels.
# Env: SN_AB_ISA (avx2 | avx512; default avx2), SN_AB_CORE (taskset core, default 1),
#      SN_AB_ROUNDS (alternated pairs per kernel, default 201), SN_BUILD, SN_SHARED.
# Example: bench/kernel-ab.sh c950a93
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = --help ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
BASE=$1
shift
ISA=${SN_AB_ISA:-avx2}
B=${SN_BUILD:-build}
case $ISA in
avx2) flags="-mavx2 -mfma" cpu=avx2 ;;
avx512) flags="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2" cpu=avx512f ;;
*) echo "kernel-ab: SN_AB_ISA must be avx2 or avx512" >&2 && exit 2 ;;
esac
grep -qw "$cpu" /proc/cpuinfo || { echo "kernel-ab: SKIP: this CPU has no $ISA" && exit 0; }
tmp=$(mktemp -d /tmp/sn-kernel-ab.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
git archive "$BASE" engine | tar -x -C "$tmp"
# shellcheck disable=SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -I"$tmp" $flags -Dsn_kernels_$ISA=sn_kernels_base \
    -c "$tmp/engine/kernels_$ISA.c" -o "$tmp/base.o"
make -s "$B/libshufflenet.a" "$B/shufflenet"
cc -std=c11 -D_GNU_SOURCE -O2 -I. -DSN_AB_TABLE="sn_kernels_$ISA" tests/perf/kernel-ab.c "$tmp/base.o" \
    "$B/libshufflenet.a" -ljansson -lm -lpthread -o "$tmp/kernel-ab"
if [ $# -eq 0 ]; then
    # shellcheck source=bench/models.sh
    . bench/models.sh
    while read -r name file _; do
        case $name in 0.5x-g3 | 1x-g1) set -- "$@" "$file" ;; esac
    done < <(sn_bench_models)
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), ISA $ISA; base $(git rev-parse --short "$BASE"), new $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- engine || echo ' + uncommitted'); $(date -u +%F)"
taskset -c "${SN_AB_CORE:-1}" "$tmp/kernel-ab" --rounds "${SN_AB_ROUNDS:-201}" "$@"
