#!/bin/sh
# check_render.sh NABLA SRCDIR - every kind of SVG the nabla command draws (lr-plot, plot,
# optim-path, compare), made afresh on the tiny fixtures, and every SVG of docs/img, rasterises
# with rsvg-convert (Debian librsvg2-bin) without an error or a warning. Skipped (77) when
# rsvg-convert is not installed.
set -eu
NABLA=$1
SRC=$2
if ! command -v rsvg-convert >/dev/null 2>&1; then
    echo "SKIP: rsvg-convert (librsvg2-bin) is not installed"
    exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
TINY=$SRC/datasets/tiny
"$NABLA" lr-plot --sched onecycle --max-lr 0.1 --steps 200 --out "$T/lr.svg" >/dev/null
"$NABLA" train --data "$TINY" --epochs 2 --batch 16 --metrics "$T/a.jsonl" >/dev/null 2>&1
"$NABLA" train --data "$TINY" --epochs 2 --batch 16 --optim adam --metrics "$T/b.jsonl" >/dev/null 2>&1
"$NABLA" plot "$T/a.jsonl" "$T/b.jsonl" --out "$T/curves.svg" >/dev/null
for cmd in optim-path compare; do # the commands this build has
    "$NABLA" --help | grep -q "^  $cmd " || continue
    case $cmd in
    optim-path) "$NABLA" optim-path --fn rosenbrock --steps 200 --out "$T/path.svg" >/dev/null ;;
    compare) "$NABLA" compare --data "$TINY" --optim sgd,adam --epochs 2 --batch 16 --out "$T/cmp" >/dev/null 2>&1 ;;
    esac
done
n=0
for f in "$T"/*.svg "$T"/cmp/*.svg "$SRC"/docs/img/*.svg; do
    [ -f "$f" ] || continue
    if ! rsvg-convert -o "$T/out.png" "$f" 2>"$T/err" || [ -s "$T/err" ]; then
        echo "FAIL: $f does not render:"
        cat "$T/err"
        exit 1
    fi
    n=$((n + 1))
done
echo "$n SVG files rendered"
[ "$n" -ge 15 ]
