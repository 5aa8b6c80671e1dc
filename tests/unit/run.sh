#!/usr/bin/env bash
# tests/unit/run.sh - runs the Criterion unit binary and shows what plain Criterion hides:
# every skipped test with its reason, and the skip count beside the synthesis line. Failures
# print in full. Exit status: the binary's.   usage: tests/unit/run.sh BINARY [ARGS...]
set -o pipefail
bin=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --verbose "$@" >"$out" 2>&1
rc=$?
grep -v -e '^\[RUN \]' -e '^\[PASS\]' -e '^\[====\] Running' -e '^\[----\] Criterion v' "$out"
skipped=$(grep -c '^\[SKIP\]' "$out")
echo "unit tests: $skipped skipped (reported as skipped, not passed)"
exit $rc
