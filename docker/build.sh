#!/bin/sh
# docker/build.sh - what `make docker` runs: build the image shufflenet-serve:latest.
#
# With a Docker daemon that answers, the image lands in it. Without one (as on a machine
# with no container registry), a private daemon builds it from base images made from
# Debian's mirror, and the image is saved to build/shufflenet-serve.tar (docker load -i)
# before that daemon is stopped.
#   IMAGE=name:tag docker/build.sh [docker build flags, e.g. --build-arg MODEL=models/x.safetensors]
set -eu
SN_HERE=$(cd "$(dirname "$0")" && pwd)
SN_ROOT=$(cd "$SN_HERE/.." && pwd)
# shellcheck source=docker/lib.sh
. "$SN_HERE/lib.sh"
cd "$SN_ROOT"
image=${IMAGE:-shufflenet-serve:latest}

trap sn_docker_down EXIT
trap 'exit 130' INT TERM
sn_need_packages
export SN_NO_PROMETHEUS=1 # the image needs the Debian base only
sn_docker_up build/docker-cache
t0=$(date +%s)
sn_docker_build "$image" "$@"
size=$(docker image inspect -f '{{.Size}}' "$image")
sn_log "built $image: $((size / 1000000)) MB in $(($(date +%s) - t0)) s"
if [ -n "$SN_DOCKER_DIR" ]; then
    mkdir -p build
    docker save -o build/shufflenet-serve.tar "$image"
    sn_log "saved to build/shufflenet-serve.tar (private daemon; load it with docker load -i)"
fi
