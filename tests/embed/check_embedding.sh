#!/bin/sh
# check_embedding.sh SRC BUILD - nabla as a Meson subproject and as an installed pkg-config
# library, each used by a small C program in a fresh temp project.
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. subproject: dependency('nabla') resolves through meson.override_dependency
mkdir -p "$tmp/app/subprojects"
ln -s "$src" "$tmp/app/subprojects/nabla"
cp "$src/tests/embed/consumer.c" "$tmp/app/"
cat > "$tmp/app/meson.build" <<'MESON'
project('app', 'c', default_options: ['c_std=c11'])
nabla = dependency('nabla', fallback: ['nabla', 'nabla_dep'], default_options: ['tests=disabled'])
executable('app', 'consumer.c', dependencies: nabla)
MESON
meson setup "$tmp/app/build" "$tmp/app" --wrap-mode=forcefallback >/dev/null
ninja -C "$tmp/app/build" >/dev/null
"$tmp/app/build/app"

# 2. install + pkg-config: headers, shared library with soversion, nabla.pc
meson setup "$tmp/inst-build" "$src" -Dtests=disabled --prefix="$tmp/prefix" --libdir=lib >/dev/null
ninja -C "$tmp/inst-build" install >/dev/null
test -f "$tmp/prefix/include/nabla.h"
test -f "$tmp/prefix/include/nabla/tensor.h"
ls "$tmp/prefix/lib/libnabla.so.0" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c11 "$src/tests/embed/consumer.c" -o "$tmp/consumer" $(pkg-config --cflags --libs nabla)
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/consumer"
# only the public API is exported
if nm -D --defined-only "$tmp/prefix/lib/libnabla.so.0" | grep -q ' nb__\| nb_k_'; then
    echo "internal nb__ or nb_k_ (kernel) symbols are exported" >&2
    exit 1
fi
echo "embedding: subproject, pkg-config install and exported symbols OK"
