#!/bin/sh
# server/fetch-models.sh - what `make models` runs: download trained ShuffleNet v1
# checkpoints, verify their sha256, convert them into models/*.safetensors. Offline (or with
# SHUFFLENET_OFFLINE=1) it says so in one line and falls back to what server/run.sh does
# (convert from $SN_SHARED/models when present). Never leaves a partial file behind.
set -eu
BUILD=${SN_BUILD:-build}
MODELS=${MODELS_DIR:-models}
CACHE=${MODELS}/.download
mkdir -p "$MODELS" "$CACHE"
MEGVII=https://github.com/DavidBlavid/ShufflenetDemo/raw/main/weights/ShuffleNetV1
MMPRE=https://download.openmmlab.com/mmclassification/v0/shufflenet_v1/shufflenet_v1_batch1024_imagenet_20200804-5d6cec73.pth

# name url sha256-or-prefix
set -- \
    "megvii-g3-0.5x $MEGVII/Group3/models/0.5x.pth.tar da5df689f1d8f278fd1446e73f3a63aa7809206fadc6678bfd7580aad412abde" \
    "megvii-g8-0.5x $MEGVII/Group8/models/0.5x.pth.tar 324922040c0ee642ce7168f32259aca0c9e16baf6b2abade4122edff6ba58382" \
    "mmpretrain-g3-1x $MMPRE 5d6cec73"

fetch() { # NAME URL SHA
    out="$MODELS/$1.safetensors"
    [ -f "$out" ] && { echo "models: $out already there"; return 0; }
    tmp="$CACHE/$1.download"
    rm -f "$tmp"
    if ! curl -fsSL --connect-timeout 10 --max-time 600 -o "$tmp" "$2" 2>/dev/null; then
        rm -f "$tmp"
        return 2
    fi
    sum=$(sha256sum "$tmp" | cut -d' ' -f1)
    case "$sum" in
        "$3"*) ;;
        *) echo "models: $1: sha256 $sum does not match $3; discarded" >&2; rm -f "$tmp"; return 1 ;;
    esac
    if "$BUILD/shufflenet" convert "$tmp" "$out.part"; then
        mv "$out.part" "$out"
    else
        rm -f "$out.part"
        echo "models: $1: conversion failed" >&2
    fi
    rm -f "$tmp"
}

offline=${SHUFFLENET_OFFLINE:-0}
rc=0
for entry in "$@"; do
    # shellcheck disable=SC2086
    set -- $entry
    if [ "$offline" = 1 ]; then break; fi
    fetch "$1" "$2" "$3" || { r=$?; [ $r = 2 ] && offline=1 || rc=1; }
done
if [ "$offline" = 1 ]; then
    echo "models: offline (cannot download checkpoints); using what \$SN_SHARED/models has, else synthetic weights at run time"
    SHARED=${SN_SHARED:-../shared}
    for g in 3 8; do
        src="$SHARED/models/megvii-shufflenet-v1-g$g-0.5x.pth.tar"
        out="$MODELS/megvii-g$g-0.5x.safetensors"
        if [ -f "$src" ] && [ ! -f "$out" ]; then
            "$BUILD/shufflenet" convert "$src" "$out.part" >/dev/null 2>&1 && mv "$out.part" "$out" || rm -f "$out.part"
        fi
    done
fi
rmdir "$CACHE" 2>/dev/null || true
ls "$MODELS"/*.safetensors 2>/dev/null || true
exit $rc
