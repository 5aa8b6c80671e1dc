#!/bin/sh
# docker/entrypoint.sh - the image's ENTRYPOINT: picks the models, then execs the server so
# that it runs as PID 1 and receives docker stop's SIGTERM itself (and drains).
#
# Models, when neither the arguments (--model, --synth, --config) nor the environment
# (SHUFFLENET_MODEL, SHUFFLENET_SYNTH, SHUFFLENET_CONFIG) name any:
#   1. /models/shufflenet-server.json        a config file
#   2. /models/*.safetensors                 each as NAME=FILE (NAME: file name sans suffix)
#   3. /usr/share/shufflenet/models/*.safetensors   baked in with --build-arg MODEL=...
#   4. synthetic weights (the server prints a loud warning: the answers are meaningless)
# A first argument that is not an option runs that command instead (e.g. shufflenet info).
set -eu

server=/usr/local/bin/shufflenet-server
models=${SHUFFLENET_MODELS_DIR:-/models}
baked=/usr/share/shufflenet/models

case "${1:-}" in
"" | -*) ;;
*) exec "$@" ;;
esac

for a in "$@"; do
    case "$a" in
    --model | --model=* | --synth | --synth=* | --config | --config=* | --help | -h | --healthcheck*)
        exec "$server" "$@"
        ;;
    esac
done
if [ -n "${SHUFFLENET_MODEL:-}${SHUFFLENET_SYNTH:-}${SHUFFLENET_CONFIG:-}" ]; then
    exec "$server" "$@"
fi

if [ -f "$models/shufflenet-server.json" ]; then
    exec "$server" --config "$models/shufflenet-server.json" "$@"
fi

# The first directory that has models wins.
for dir in "$models" "$baked"; do
    n=0
    for f in "$dir"/*.safetensors; do [ -f "$f" ] && n=$((n + 1)); done
    [ "$n" -gt 0 ] || continue
    for f in "$dir"/*.safetensors; do
        [ -f "$f" ] || continue
        set -- "$@" --model "$(basename "$f" .safetensors)=$f"
    done
    echo "shufflenet-entrypoint: serving $n model(s) from $dir" >&2
    # shellcheck disable=SC2093 # exec ends the loop on purpose
    exec "$server" "$@"
done

cat >&2 <<EOF
##################################################################################
## WARNING: no models in $models (mount a volume there) and none baked in.
## Serving SYNTHETIC weights: every answer is meaningless and says
## "weights": "synthetic". See "Run with Docker" in README.md.
##################################################################################
EOF
exec "$server" --synth "${SHUFFLENET_SYNTH_DEFAULT:-shufflenet-g3-0.5x=3:0.5}" "$@"
