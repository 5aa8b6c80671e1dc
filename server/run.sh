#!/bin/sh
# server/run.sh - what `make run` runs: make sure models exist, then exec the server.
#
# Trained models: models/megvii-g{3,8}-0.5x.safetensors, converted here from
# $SN_SHARED/models/*.pth.tar when missing (and models/mmpretrain-g3-1x.safetensors when
# `make models` fetched it). Without any trained model the server gets synthetic g=1,2,3,4,8
# 1x models, with a loud warning: their answers mean nothing.
# Extra arguments are passed to the server (e.g. `make run ARGS="--workers 4"`).
set -eu
BUILD=${SN_BUILD:-build}
SHARED=${SN_SHARED:-../shared}
MODELS=${MODELS_DIR:-models}
mkdir -p "$MODELS"

convert() { # SRC DST: convert atomically, never leaving a partial file
    [ -f "$2" ] && return 0
    [ -f "$1" ] || return 0
    "$BUILD/shufflenet" convert "$1" "$2.part" >/dev/null && mv "$2.part" "$2" || rm -f "$2.part"
}
convert "$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar" "$MODELS/megvii-g3-0.5x.safetensors"
convert "$SHARED/models/megvii-shufflenet-v1-g8-0.5x.pth.tar" "$MODELS/megvii-g8-0.5x.safetensors"

args=""
default=""
for m in g3:megvii-g3-0.5x g8:megvii-g8-0.5x g3-1x:mmpretrain-g3-1x; do
    name=${m%%:*}
    file="$MODELS/${m#*:}.safetensors"
    if [ -f "$file" ]; then
        args="$args --model $name=$file"
        [ -n "$default" ] || default=$name
    fi
done
if [ -z "$args" ]; then
    echo "##################################################################################" >&2
    echo "## WARNING: no trained ShuffleNet weights found (looked in $MODELS/ and $SHARED/models/)." >&2
    echo "## Serving SYNTHETIC g=1,2,3,4,8 1x models: every answer is meaningless and says" >&2
    echo "## \"weights\": \"synthetic\". Run \`make models\` (online) for trained weights." >&2
    echo "##################################################################################" >&2
    args="--synth g1=1:1.0 --synth g2=2:1.0 --synth g3=3:1.0 --synth g4=4:1.0 --synth g8=8:1.0"
    default=g3
fi
# shellcheck disable=SC2086
exec "$BUILD/shufflenet-server" $args --default-model "$default" "$@"
