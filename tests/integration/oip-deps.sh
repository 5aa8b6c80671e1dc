#!/bin/sh
# oip-deps.sh - installs what the v2 tests' schema check needs: node and npm (Debian's
# packages, when missing), then ajv@8 and js-yaml@4 into .cache/oip-schema (git-ignored).
# Idempotent: does nothing when they are there. Run by `make test-integration`.
set -eu
cd "$(dirname "$0")/../.."
dst=.cache/oip-schema
[ -f "$dst/node_modules/ajv/package.json" ] && [ -f "$dst/node_modules/js-yaml/package.json" ] &&
    exit 0
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "oip-deps: installing node and npm (apt-get)"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
echo "oip-deps: installing ajv and js-yaml into $dst"
mkdir -p "$dst"
npm install --prefix "$dst" --no-audit --no-fund --no-save ajv@8 js-yaml@4 >/dev/null
