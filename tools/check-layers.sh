#!/bin/sh
# tools/check-layers.sh - fails when an #include crosses the layers the wrong way
# (docs/DESIGN.md, "The layers"). Run by every `make` before anything links.
#   engine/  includes only engine/
#   common/  includes engine/ and common/
#   server/, tools/, bench/  include engine/, common/ and their own folder
#   engine-internal headers (kernels, model internals) are included only from engine/ (and tests)
#   tests/   anything
# Every project include is path-qualified ("engine/shufflenet.h"), so the folder is the layer.
cd "$(dirname "$0")/.." || exit 2
bad=0
check() { # folder allowed-prefixes...
    dir=$1
    shift
    for f in "$dir"/*.[ch]; do
        [ -e "$f" ] || continue
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
            inc=$(printf '%s' "$line" | sed 's/.*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/')
            ok=0
            for p in "$@"; do
                case "$inc" in "$p"/*) ok=1 ;; esac
            done
            case "$inc" in */*) ;; *) ok=0 ;; esac
            if [ $ok = 0 ]; then
                echo "layers: $f: #include \"$inc\" crosses a layer (allowed: $*)"
                echo x >>"$tmp"
            fi
        done
    done
}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
check engine engine
check common engine common
check server engine common server
check tools engine common tools
check bench engine common bench
# Engine internals stay inside engine/.
for f in common/*.[ch] server/*.[ch] tools/*.[ch] bench/*.[ch]; do
    [ -e "$f" ] || continue
    if grep -qE '#[[:space:]]*include[[:space:]]*"engine/(kernels|kernels_[a-z0-9_]*|model)\.h"' "$f"; then
        echo "layers: $f includes an engine-internal header (engine/kernels*.h, engine/model.h)"
        echo x >>"$tmp"
    fi
done
if grep -nE -- '-I(\./)?(engine|common|server|tools|bench)\b' Makefile >/dev/null; then
    echo "layers: Makefile adds a folder to the include path; build with -I. only"
    echo x >>"$tmp"
fi
[ -s "$tmp" ] && bad=1
exit $bad
