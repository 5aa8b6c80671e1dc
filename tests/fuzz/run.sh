#!/usr/bin/env bash
# run.sh - runs every libFuzzer target for FUZZ_SECONDS each, seeded from project-made inputs
# and, when present, ../shared (copied into build/fuzz/corpus at run time, never committed).
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
B=${1:-build/fuzz}
SECS=${2:-60}
SHARED=${SN_SHARED:-../shared}
C=$B/corpus
mkdir -p "$C"/{model,npy,image,checkpoint,multipart,config,oip}
# v2 requests: JSON only, and JSON header + binary (byte 0 bit 0: the header length follows)
printf '\0\0\0{"id":"a","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["iVBORw0KGgo="]}],"outputs":[{"name":"logits","parameters":{"classification":3}}]}' > "$C/oip/json.bin"
printf '\1\141\0{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":14}}]}\3\0\0\0abc\3\0\0\0xyz' > "$C/oip/bytes.bin"
printf '\1\220\0{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,4,4],"parameters":{"binary_data_size":192}}],"parameters":{"binary_data_output":true}}' > "$C/oip/fp32.bin"
head -c 192 /dev/zero >> "$C/oip/fp32.bin"
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
