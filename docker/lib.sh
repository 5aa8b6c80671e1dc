# shellcheck shell=sh
# docker/lib.sh - shared by docker/build.sh and docker/test.sh (sourced, not run): install
# what is missing, and reach a Docker daemon: the user's own when one answers, else a
# private one (docker/dockerd.sh) with base images made from Debian's mirror
# (docker/base-images.sh). sn_docker_down undoes whatever sn_docker_up did.
#
# Set SN_PRIVATE_DOCKER=1 to use the private daemon even when another one answers.

# The Debian engine's own client first, matching the daemon it ships.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export DOCKER_BUILDKIT=0 # the legacy builder: no buildx here
SN_DOCKER_DIR=${SN_DOCKER_DIR:-}
SN_BUILD_NET=

sn_log() { printf '%s %s\n' "[$(date +%T)]" "$*" >&2; }
sn_die() {
    sn_log "FAIL: $*"
    exit 1
}

# apt-get install, only of what is missing (as root, or with sudo).
sn_need_packages() {
    missing=
    command -v docker >/dev/null && command -v dockerd >/dev/null || missing="$missing docker.io"
    command -v docker-compose >/dev/null || missing="$missing docker-compose"
    command -v debootstrap >/dev/null || missing="$missing debootstrap"
    command -v curl >/dev/null || missing="$missing curl"
    command -v python3 >/dev/null || missing="$missing python3"
    [ -n "$missing" ] || return 0
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    sn_log "installing:$missing"
    $sudo apt-get update -qq >/dev/null
    # shellcheck disable=SC2086 # a list of names
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        $missing >/dev/null
    hash -r 2>/dev/null || true # the new docker client, not one found before
}

# Sets DOCKER_HOST to a daemon that answers; starts a private one under a temporary
# directory when needed and makes its base images (cached in $1, default build/docker-cache).
sn_docker_up() {
    if [ "${SN_PRIVATE_DOCKER:-0}" != 1 ] && docker version >/dev/null 2>&1; then
        sn_log "using the Docker daemon at ${DOCKER_HOST:-the default socket}"
        return 0
    fi
    SN_DOCKER_DIR=$(mktemp -d /tmp/sn-docker.XXXXXX)
    sn_log "starting a private dockerd under $SN_DOCKER_DIR (iptables off)"
    DOCKER_HOST=$("$SN_HERE/dockerd.sh" start "$SN_DOCKER_DIR") || return 1
    export DOCKER_HOST
    # With iptables off the default bridge has no way out: builds use the host's network.
    SN_BUILD_NET="--network host"
    "$SN_HERE/base-images.sh" "${1:-build/docker-cache}"
}

sn_docker_down() {
    [ -n "$SN_DOCKER_DIR" ] || return 0
    sn_log "stopping the private dockerd"
    "$SN_HERE/dockerd.sh" stop "$SN_DOCKER_DIR" || true
    SN_DOCKER_DIR=
}

# docker build of the project's image: sn_docker_build TAG [build flags...]
sn_docker_build() {
    tag=$1
    shift
    # shellcheck disable=SC2086 # SN_BUILD_NET is empty or two words
    docker build -q $SN_BUILD_NET -t "$tag" "$@" "$SN_ROOT" >/dev/null
}
