#!/bin/sh
# docker/arm64.sh - what `make docker-arm64` runs: the same Dockerfile built for linux/arm64 on
# this x86-64 machine, through QEMU (binfmt_misc), then the image's CLI run under QEMU: it must
# report an aarch64 machine, pick the NEON kernels, and synthesize, load and run a model.
#
# Needs binfmt_misc (the host kernel's; mounted here if it is not) and qemu-user-static from
# Debian, registered with the F flag so containers use the host's interpreter. A private
# daemon of its own builds from Debian base images made for arm64 (docker/base-images.sh with
# SN_DOCKER_ARCH=arm64); the image is saved to build/shufflenet-serve-arm64.tar. The arm64
# build stage compiles under emulation: count 10-20 minutes on 2 cores.
# With buildx (Docker Hub reachable) the equivalent is:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/shufflenet-serve --push .
set -eu
SN_HERE=$(cd "$(dirname "$0")" && pwd)
SN_ROOT=$(cd "$SN_HERE/.." && pwd)
# shellcheck source=docker/lib.sh
. "$SN_HERE/lib.sh"
cd "$SN_ROOT"
image=${IMAGE:-shufflenet-serve:arm64}
export SN_DOCKER_ARCH=arm64 SN_NO_PROMETHEUS=1 SN_PRIVATE_DOCKER=1

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e $binfmt/register ]; then
    $sudo mount -t binfmt_misc binfmt_misc $binfmt ||
        sn_die "binfmt_misc cannot be mounted here: no arm64 emulation for containers"
fi
if [ ! -e $binfmt/qemu-aarch64 ]; then
    [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ] || {
        sn_log "installing qemu-user-static"
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            qemu-user-static >/dev/null
    }
    # The F flag: the interpreter is opened now, so it works inside containers too.
    grep '^:' /usr/lib/binfmt.d/qemu-aarch64.conf | $sudo tee $binfmt/register >/dev/null ||
        sn_die "cannot register qemu-aarch64 with binfmt_misc"
fi
grep -q '^flags:.*F' $binfmt/qemu-aarch64 || sn_die "qemu-aarch64 is registered without the F flag"

trap sn_docker_down EXIT
trap 'exit 130' INT TERM
sn_need_packages
sn_docker_up build/docker-cache
t0=$(date +%s)
# No --platform: the legacy builder of Debian's docker.io (20.10) stamps WORKDIR layers with the
# daemon's own platform and then refuses them ("does not match the specified platform"). This
# daemon holds arm64 base images only, so every stage is arm64 anyway; uname -m below checks.
sn_docker_build "$image"
sn_log "built $image (arm64 base images) in $(($(date +%s) - t0)) s"
out=$(docker run --rm "$image" sh -c '
    uname -m
    shufflenet synth --groups 3 --width 0.5 --seed 1 -o /tmp/m.safetensors >/dev/null &&
    shufflenet info /tmp/m.safetensors | head -3 &&
    shufflenet bench --model /tmp/m.safetensors --batch 2 --iterations 2 --warmup 1')
printf '%s\n' "$out"
printf '%s\n' "$out" | head -1 | grep -qx aarch64 || sn_die "the container is not aarch64"
printf '%s\n' "$out" | grep -q 'isa=neon' || sn_die "the arm64 image did not pick the NEON kernels"
docker save -o build/shufflenet-serve-arm64.tar "$image"
sn_log "docker-arm64: the arm64 image's CLI runs under QEMU and uses NEON; saved to build/shufflenet-serve-arm64.tar"
