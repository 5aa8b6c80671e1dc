#!/bin/sh
# docker/base-images.sh - base images for a daemon that reaches no container registry.
#
# Makes debian:bookworm-slim (also tagged debian:bookworm) from Debian's mirror with
# debootstrap, and prom/prometheus:$PROM_TAG from Debian's prometheus package, so that the
# Dockerfile's and compose.yaml's unmodified image names resolve. On a machine that reaches
# Docker Hub none of this is needed: the same files pull the official images.
#
#   DOCKER_HOST=unix://... docker/base-images.sh [CACHE_DIR]
#
# CACHE_DIR (default build/docker-cache) keeps the debootstrap tarball between runs.
# Images already present in the daemon are kept as they are. SN_NO_PROMETHEUS=1: only Debian.
# SN_DOCKER_ARCH=arm64 (a Debian architecture other than the host's): the Debian images are
# made for that architecture (debootstrap runs its second stage through binfmt/qemu) and
# imported as linux/ARCH; use a daemon of their own, since the tags are the same.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-build/docker-cache}
suite=bookworm
prom_tag=${PROM_TAG:-v2.42.0}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The host's Debian mirror: first URIs line of the deb822 sources, else sources.list.
mirror() {
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$m" ] || m=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    echo "${m:-http://deb.debian.org/debian}"
}

arch=${SN_DOCKER_ARCH:-}
[ "$arch" != "$(dpkg --print-architecture 2>/dev/null)" ] || arch=
rootfs_tar="$cache/$suite-minbase${arch:+-$arch}.tar"
if ! have_image debian:$suite-slim; then
    if [ ! -s "$rootfs_tar" ]; then
        command -v debootstrap >/dev/null || {
            echo "base-images.sh: debootstrap not installed (apt-get install debootstrap)" >&2
            exit 1
        }
        root=$(mktemp -d "$cache/rootfs.XXXXXX")
        trap 'rm -rf "$root"' EXIT
        echo "base-images: debootstrap $suite${arch:+ ($arch)} from $(mirror)"
        debootstrap --variant=minbase ${arch:+--arch="$arch"} "$suite" "$root" "$(mirror)" \
            >"$cache/debootstrap.log" 2>&1 || {
            tail -20 "$cache/debootstrap.log" >&2
            exit 1
        }
        # Same apt sources as the host (the official image uses deb822 sources too).
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            rm -f "$root/etc/apt/sources.list"
            cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
        fi
        # A frozen snapshot mirror has an expired Release date; follow the host's apt there.
        if apt-config dump 2>/dev/null | grep -q 'Acquire::Check-Valid-Until "false"'; then
            printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
                >"$root/etc/apt/apt.conf.d/99snapshot-mirror"
        fi
        # What makes the official image slim: no docs, man pages or translations; no
        # services started by package scripts; apt caches cleaned after each install.
        cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
        cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
        chmod 755 "$root/usr/sbin/policy-rc.d"
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
        find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
        rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/locale"/* \
            "$root/var/cache/apt"/*.bin "$root/var/cache/apt/archives"/*.deb \
            "$root/var/lib/apt/lists"/* "$root/var/log"/*.log "$root/var/log/apt"/* \
            "$root/debootstrap" 2>/dev/null || true
        tar --numeric-owner -C "$root" -cf "$rootfs_tar.tmp" .
        mv "$rootfs_tar.tmp" "$rootfs_tar"
        rm -rf "$root"
        trap - EXIT
    fi
    echo "base-images: docker import debian:$suite-slim${arch:+ (linux/$arch)}"
    docker import ${arch:+--platform "linux/$arch"} --change 'CMD ["bash"]' "$rootfs_tar" \
        debian:$suite-slim >/dev/null
fi
have_image debian:$suite || docker tag debian:$suite-slim debian:$suite

# prom/prometheus stand-in: Debian's package behind the official image's interface
# (ENTRYPOINT /bin/prometheus, config /etc/prometheus/prometheus.yml, data /prometheus,
# user nobody, port 9090).
if [ "${SN_NO_PROMETHEUS:-0}" != 1 ] && ! have_image "prom/prometheus:$prom_tag"; then
    echo "base-images: building prom/prometheus:$prom_tag from Debian's prometheus package"
    DOCKER_BUILDKIT=0 docker build -q --network host -t "prom/prometheus:$prom_tag" \
        -f "$here/prometheus-standin.Dockerfile" "$here/empty-context" >/dev/null
fi
