#!/bin/sh
# tests/deploy/run.sh - `make test-deploy` (part of `make test`): validates deploy/ offline
# (tests/deploy/validate.mjs: kustomize renders, Kubernetes/CRD schemas, probes against the
# real server, the prometheus-adapter and KEDA queries in a real Prometheus) and checks the
# HAProxy config with haproxy -c. The npm packages (tests/deploy/package.json) install once
# into .cache/k8s-validate.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SN_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
cache=$ROOT/.cache/k8s-validate
for t in node npm; do
    command -v $t >/dev/null || { echo "deploy: $t not found (Debian package nodejs / npm)"; exit 1; }
done
mkdir -p "$cache"
if ! cmp -s "$ROOT/tests/deploy/package.json" "$cache/package.json" ||
   [ ! -d "$cache/node_modules/kubernetes-models" ]; then
    echo "deploy: installing kubernetes-models and friends into .cache/k8s-validate (npm)"
    cp "$ROOT/tests/deploy/package.json" "$cache/package.json"
    (cd "$cache" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null)
fi
cp "$ROOT/tests/deploy/validate.mjs" "$cache/validate.mjs"
rc=0
if command -v haproxy >/dev/null; then
    if out=$(SN_HAPROXY_SOCKET=/tmp/sn-haproxy-check.sock haproxy -c -f "$ROOT/deploy/haproxy/haproxy.cfg" 2>&1); then
        echo "PASS deploy/haproxy/haproxy.cfg: haproxy -c"
    else
        echo "FAIL deploy/haproxy/haproxy.cfg: haproxy -c: $out"
        rc=1
    fi
else
    echo "SKIP: haproxy -c: haproxy not installed (make deps)"
fi
if command -v promtool >/dev/null; then
    for f in docker/prometheus.yml docker/prometheus.scale.yml; do
        if out=$(promtool check config "$ROOT/$f" 2>&1); then echo "PASS $f: promtool check config"
        else echo "FAIL $f: $out"; rc=1; fi
    done
fi
# the one-host stack parses as compose sees it (validate.mjs checks its mounts and timings)
if command -v docker-compose >/dev/null; then
    if out=$(cd "$ROOT/docker" && docker-compose -f compose.scale.yaml config -q 2>&1); then
        echo "PASS docker/compose.scale.yaml: docker-compose config"
    else
        echo "FAIL docker/compose.scale.yaml: docker-compose config: $out"
        rc=1
    fi
else
    echo "SKIP: docker/compose.scale.yaml: docker-compose not installed"
fi
node "$cache/validate.mjs" "$ROOT" "$BUILD/shufflenet-server" || rc=1
exit $rc
