#!/bin/sh
# tests/integration/run.sh - `make test-integration`: the real shufflenet-server on free
# 127.0.0.1 ports, driven by test_server.py, test_badinput.py, test_slow.py,
# test_shutdown.py, test_cgroup.py, test_v2.py and test_v2_badreq.py (python3, standard
# library only; node + Ajv for the v2 schema checks).
# Models: the megvii g3/g8 0.5x checkpoints converted from $SN_SHARED/models; without
# ../shared, synthetic g3/g8 0.5x models (expected-class tests then print SKIP).
set -eu
BUILD=${SN_BUILD:-build}
SHARED=${SN_SHARED:-../shared}
export SN_BUILD="$BUILD" SN_SHARED="$SHARED"
dir=$(mktemp -d /tmp/sn-integration-XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
export SN_MODELS="$dir"
if [ -f "$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar" ] &&
   [ -f "$SHARED/models/megvii-shufflenet-v1-g8-0.5x.pth.tar" ]; then
    for g in 3 8; do
        "$BUILD/shufflenet" convert "$SHARED/models/megvii-shufflenet-v1-g$g-0.5x.pth.tar" \
            "$dir/megvii-g$g-0.5x.safetensors" >/dev/null
    done
    export SN_TRAINED=1
else
    echo "SKIP: ../shared not found: synthetic g3/g8 models, no expected-class checks"
    for g in 3 8; do
        "$BUILD/shufflenet" synth --groups $g --width 0.5 --seed $g \
            -o "$dir/megvii-g$g-0.5x.safetensors" >/dev/null
    done
    export SN_TRAINED=0
fi
case "$BUILD" in
    *asan* | *tsan*) export SN_SLOW=${SN_SLOW:-4} ;;
esac
# sanitizer runtimes must not see a leak from python or curl; the server's report counts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
# servers stop at once on SIGTERM unless a test sets a shutdown delay (test_shutdown.py)
export SHUFFLENET_SHUTDOWN_DELAY_MS=${SHUFFLENET_SHUTDOWN_DELAY_MS:-0}
# the service suite, the bad-input catalog, slow and vanishing clients, shutdown, cgroups,
# the v2 API and its bad-request catalog, the memory budget
rc=0
for t in test_server.py test_badinput.py test_slow.py test_shutdown.py test_cgroup.py \
    test_v2.py test_v2_badreq.py test_memory.py; do
    python3 "$(dirname "$0")/$t" "$@" || rc=1
done
exit $rc
