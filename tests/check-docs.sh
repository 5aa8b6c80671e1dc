#!/bin/sh
# tests/check-docs.sh - every reference to a design section in the code or the docs,
# written `DESIGN.md, "<section>"`, must name a heading of docs/DESIGN.md; a bare
# "DESIGN.md section N" (a numbering that does not exist) is refused too.
cd "$(dirname "$0")/.." || exit 2
bad=0
refs=$(git ls-files 2>/dev/null | grep -vE '^(docs/DESIGN\.md|tests/check-docs\.sh)$' |
    xargs grep -ho 'DESIGN\.md, "[^"]*"' 2>/dev/null | sed 's/.*, "\(.*\)"/\1/' | sort -u)
n=0
IFS='
'
for r in $refs; do
    n=$((n + 1))
    if ! grep -qE "^#+ $r\$" docs/DESIGN.md; then
        echo "check-docs: a reference to DESIGN.md section \"$r\" has no such heading"
        bad=1
    fi
done
if git ls-files | xargs grep -ln 'DESIGN\.md section' 2>/dev/null | grep -vE '^(docs/DESIGN.md|tests/check-docs.sh)$'; then
    echo "check-docs: the files above cite \"DESIGN.md section N\"; cite a heading instead"
    bad=1
fi
[ $bad = 0 ] && echo "check-docs: $n design references, every one resolves in docs/DESIGN.md"
exit $bad
