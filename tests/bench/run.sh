#!/usr/bin/env bash
# tests/bench/run.sh - the benchmark tooling's own checks: bench/cpuid-avx2.c, the shim that
# shows ONNX Runtime an AVX2-only CPU in bench/compare-peers, hides AVX-512 from cpuid, keeps
# AVX2, and leaves every other fault to the process (its own handler, or the crash).
# Needs the kernel's CPUID faulting (CPU flag cpuid_fault); prints SKIP without it.
set -u
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

if [ "$(uname -m)" != x86_64 ]; then
    echo "SKIP: bench tooling checks: cpuid shim is x86-64 only"
    exit 0
fi
$CC -O2 -Wall -Wextra -Werror -shared -fPIC -o "$TMP/shim.so" bench/cpuid-avx2.c -ldl || exit 1
$CC -O2 -Wall -Wextra -Werror -o "$TMP/probe" tests/bench/cpuid_probe.c || exit 1
if ! grep -qw cpuid_fault /proc/cpuinfo; then
    echo "SKIP: bench tooling checks: no CPUID faulting on this CPU/kernel (flag cpuid_fault)"
    exit 0
fi
flag() { grep -m1 '^flags' /proc/cpuinfo | grep -qw "$1" && echo 1 || echo 0; }
real="avx2=$(flag avx2) avx512f=$(flag avx512f) avx512bw=$(flag avx512bw)"
hidden="avx2=$(flag avx2) avx512f=0 avx512bw=0"

out=$("$TMP/probe")
[ "$out" = "$real" ] && ok "probe alone sees /proc/cpuinfo's flags ($out)" ||
    bad "probe alone: '$out', /proc/cpuinfo says '$real'"
out=$(LD_PRELOAD="$TMP/shim.so" timeout 10 "$TMP/probe")
[ "$out" = "$hidden" ] && ok "under the shim AVX-512 is hidden, AVX2 kept ($out)" ||
    bad "under the shim: '$out', want '$hidden'"
rc=$( (LD_PRELOAD="$TMP/shim.so" timeout 10 "$TMP/probe" crash >/dev/null 2>&1; echo $?) 2>/dev/null)
[ $rc -eq 139 ] && ok "a real fault still kills the process with SIGSEGV (exit $rc)" ||
    bad "a real fault under the shim: exit $rc, want 139 (SIGSEGV)"
out=$(LD_PRELOAD="$TMP/shim.so" timeout 10 "$TMP/probe" handler 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "${out##*$'\n'}" = "own handler ran" ] &&
    ok "a real fault reaches the process's own SIGSEGV handler" ||
    bad "own handler under the shim: exit $rc, output '$out'"
if command -v node >/dev/null; then
    out=$(LD_PRELOAD="$TMP/shim.so" timeout 30 node -e 'console.log(process.env.SN_CPUID_AVX2)' 2>&1)
    [ "$out" = active ] && ok "Node.js (which resets signal handlers at start) runs under the shim" ||
        bad "node under the shim: '$out'"
fi
echo "bench tooling: $pass passed, $fail failed"
[ $fail -eq 0 ]
