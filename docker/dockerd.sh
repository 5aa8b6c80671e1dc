#!/bin/sh
# docker/dockerd.sh - a private Docker daemon for the image tests, started and stopped here.
#
#   docker/dockerd.sh start DIR   start dockerd with its socket, data and state under DIR
#                                 (iptables off: the host firewall is left alone) and wait
#                                 until it answers; prints the DOCKER_HOST to use
#   docker/dockerd.sh stop DIR    stop that daemon by its pid, then remove the network links
#                                 and mounts it left behind, and DIR itself
#
# The daemon never listens on TCP; clients reach it through DIR/docker.sock only.
set -eu
# The Debian engine's own client first, matching the daemon.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }

case "$cmd" in
start)
    command -v dockerd >/dev/null || {
        echo "dockerd.sh: dockerd not installed (apt-get install docker.io)" >&2
        exit 1
    }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
        echo "unix://$dir/docker.sock"
        exit 0
    fi
    links >"$dir/links.before"
    # Its own containerd too: nothing shared with a system daemon, if there is one.
    nohup dockerd --iptables=false --ip-masq=false \
        -H "unix://$dir/docker.sock" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.launch.pid"
    i=0
    while ! docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 60 ] || ! kill -0 "$(cat "$dir/dockerd.launch.pid")" 2>/dev/null; then
            echo "dockerd.sh: dockerd did not come up; last lines of $dir/dockerd.log:" >&2
            tail -20 "$dir/dockerd.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "unix://$dir/docker.sock"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    pid=
    [ -f "$dir/dockerd.pid" ] && pid=$(cat "$dir/dockerd.pid")
    [ -z "$pid" ] && [ -f "$dir/dockerd.launch.pid" ] && pid=$(cat "$dir/dockerd.launch.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # Containers first, so their processes end while the daemon still knows them.
        docker -H "unix://$dir/docker.sock" ps -q 2>/dev/null |
            xargs -r docker -H "unix://$dir/docker.sock" rm -f >/dev/null 2>&1 || true
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null; do
            i=$((i + 1))
            if [ $i -gt 60 ]; then kill -KILL "$pid" 2>/dev/null || true; fi
            if [ $i -gt 70 ]; then break; fi
            sleep 0.5
        done
    fi
    # The daemon's containerd is its child; make sure it went with it.
    if [ -f "$dir/exec/containerd/containerd.pid" ]; then
        cpid=$(cat "$dir/exec/containerd/containerd.pid")
        kill -TERM "$cpid" 2>/dev/null || true
    fi
    # Network links it made (docker0, compose's br-*, veths), only those new since start.
    if [ -f "$dir/links.before" ]; then
        links | comm -13 "$dir/links.before" - | while read -r l; do
            case "$l" in docker0 | br-* | veth*) ip link delete "$l" 2>/dev/null || true ;; esac
        done
    fi
    # Mounts under its directories, deepest first.
    grep -F " $dir/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
