#!/bin/sh
# check_std.sh COMPILER STD PROGRAM INCLUDE LIBRARY [SANITIZE] - the public headers under one
# language standard, as an embedding program's compiler sees them.
#
# Every header of INCLUDE/nabla/ is compiled alone (each includes what it needs), then PROGRAM
# (C or C++, by its extension) with COMPILER -std=STD -Wall -Wextra -pedantic -Werror; it is
# linked with LIBRARY (the shared libnabla) and run, except in a sanitizer build (SANITIZE not
# "none"), where the library needs the sanitizer runtime of the compiler that built it: there the
# headers and the program are compiled, not linked. Exits 77 (skipped) when COMPILER is absent.
# STD c23 falls back to c2x for compilers that do not know the name yet (gcc 12, clang 14).
set -eu
compiler=$1 std=$2 program=$3 include=$4 library=$5 sanitize=${6:-none}
if ! command -v "$compiler" >/dev/null 2>&1; then
    echo "SKIP: $compiler is not installed"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case $program in
*.cpp) lang=c++ ;;
*) lang=c ;;
esac
if [ "$std" = c23 ] && ! echo 'int x;' | "$compiler" -x c -std=c23 -fsyntax-only - 2>/dev/null; then
    std=c2x
fi
flags="-std=$std -Wall -Wextra -pedantic -Werror -I$include"

for h in "$include"/nabla/*.h "$include"/nabla.h; do
    name=${h#"$include"/}
    printf '#include "%s"\n' "$name" > "$tmp/one.$lang"
    # shellcheck disable=SC2086 # $flags is a list of flags
    if ! "$compiler" -x "$lang" $flags -fsyntax-only "$tmp/one.$lang"; then
        echo "FAIL: $name does not compile alone as $compiler -std=$std" >&2
        exit 1
    fi
done

# shellcheck disable=SC2086
"$compiler" $flags -c "$program" -o "$tmp/program.o"
if [ "$sanitize" != none ]; then
    echo "$compiler -std=$std: every header and $(basename "$program") compile (not linked: -Db_sanitize=$sanitize)"
    exit 0
fi
"$compiler" "$tmp/program.o" -o "$tmp/program" "$library" -Wl,-rpath,"$(dirname "$library")"
"$tmp/program"
echo "$compiler -std=$std: every header compiles alone; $(basename "$program") builds and runs"
