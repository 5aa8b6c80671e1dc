#!/usr/bin/env bash
# run.sh - runs every libFuzzer target for FUZZ_SECONDS each, seeded from project-made inputs
# and, when present, ../shared (copied into build/fuzz/corpus at run time, never committed).
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
B=${1:-build/fuzz}
SECS=${2:-60}
SHARED=${SN_SHARED:-../shared}
C=$B/corpus
mkdir -p "$C"/{model,npy,image,checkpoint,multipart,config}
# Seeds made by the project itself.
if [ ! -f "$C/model/synth.safetensors" ]; then
  build/shufflenet synth --groups 2 --width 0.25 --seed 1 -o "$C/model/synth.safetensors" 2>/dev/null || true
fi
printf '\x93NUMPY\x01\x00\x76\x00{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2,), }' > "$C/npy/seed.npy"
printf '%*s\n\0\0\0\0\0\0\0\0' 51 '' >> "$C/npy/seed.npy"
if [ -d "$SHARED/images" ]; then
  for f in "$SHARED"/images/*.jpg "$SHARED"/images/*.png; do
    s=$(stat -c %s "$f"); [ "$s" -lt 300000 ] && { printf '\x00'; cat "$f"; } > "$C/image/$(basename "$f")"
  done
  cp -n "$SHARED"/models/reference/*/*.npy "$C/npy/" 2>/dev/null || true
  for f in "$SHARED"/models/*.pth*; do cp -n "$f" "$C/checkpoint/"; done
fi
[ -f config/shufflenet-server.json ] && cp config/shufflenet-server.json "$C/config/"
status=0
for t in "$B"/fuzz_*; do
  name=$(basename "$t"); name=${name#fuzz_}
  dir="$C/$name"; mkdir -p "$dir"
  echo "== fuzz $name for ${SECS}s"
  if ! "$t" -max_total_time="$SECS" -max_len=4000000 -rss_limit_mb=2048 -timeout=20 \
        -artifact_prefix="$B/crash-$name-" "$dir" 2>"$B/fuzz-$name.log"; then
    echo "FAILED: $name (see $B/fuzz-$name.log and $B/crash-$name-*)"; status=1
  fi
  grep -E '^(#[0-9]+ *DONE|Done)' "$B/fuzz-$name.log" | tail -1 || true
done
exit $status
