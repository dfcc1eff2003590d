#!/bin/sh
# check_embedding.sh SRC - nabla as a Meson subproject of a small parent project, and as an
# installed library used through pkg-config, each by a small C program in a fresh temp project.
#
# 1. subproject, the parent's defaults: only the library is built, nothing is installed into the
#    parent's prefix, no nabla benchmark joins the parent's list;
# 2. subproject, the parent asks (-Dnabla:cli=enabled ...): the command, examples, benchmarks
#    and the installation come back;
# 3. meson install into a temp prefix: library (shared and static), headers, nabla.pc, the nabla
#    command and its manual page; a program built with pkg-config against the shared library,
#    and against the static one (Meson's dependency('nabla', static: true), and plain cc);
#    only the public API is exported.
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "check_embedding: $*" >&2
    exit 1
}
# meson introspect JSON -> one line per item: python3 expression over the list `j`
intro() {
    what=$1 dir=$2 expr=$3
    meson introspect "$what" "$dir" | python3 -c "import json, sys; j = json.load(sys.stdin); print('\n'.join(sorted($expr)))"
}

# ---- 1. subproject, defaults ---------------------------------------------------------------
mkdir -p "$tmp/app/subprojects"
ln -s "$src" "$tmp/app/subprojects/nabla"
cp "$src/tests/embed/consumer.c" "$tmp/app/"
cat > "$tmp/app/meson.build" <<'MESON'
project('app', 'c', default_options: ['c_std=c11'])
nabla = dependency('nabla', fallback: ['nabla', 'nabla_dep'])
app = executable('app', 'consumer.c', dependencies: nabla, install: true)
benchmark('app_bench', app)
MESON
meson setup "$tmp/app/build" "$tmp/app" --wrap-mode=forcefallback --prefix="$tmp/app-prefix" >/dev/null
built=$(intro --targets "$tmp/app/build" "{t['name'] + ' ' + t['type'] for t in j if t['subproject'] == 'nabla'}")
[ "$built" = "nabla shared library
nabla static library" ] || fail "as a subproject nabla builds more than its library: $built"
benches=$(intro --benchmarks "$tmp/app/build" "{b['name'] for b in j}")
[ "$benches" = app_bench ] || fail "nabla's benchmarks joined the parent's: $benches"
ninja -C "$tmp/app/build" >/dev/null
"$tmp/app/build/app" >/dev/null
meson install -C "$tmp/app/build" --quiet --destdir "$tmp/app-dest" >/dev/null
installed=$(cd "$tmp/app-dest" && find . -type f -o -type l | sed "s|^\.$tmp/app-prefix/||")
[ "$installed" = bin/app ] || fail "the parent's meson install installed nabla's files: $installed"

# ---- 2. subproject, the parent asks for everything -----------------------------------------
meson setup "$tmp/app/build-all" "$tmp/app" --wrap-mode=forcefallback --prefix="$tmp/app-prefix" \
    -Dnabla:cli=enabled -Dnabla:examples=enabled -Dnabla:benchmarks=enabled -Dnabla:install=enabled >/dev/null
built=$(intro --targets "$tmp/app/build-all" "{t['name'] for t in j if t['subproject'] == 'nabla'}")
for t in nabla mlp bench_optim; do
    echo "$built" | grep -qx "$t" || fail "-Dnabla:cli/examples/benchmarks=enabled did not build $t"
done
intro --benchmarks "$tmp/app/build-all" "{b['name'] for b in j}" | grep -qx optim_step ||
    fail "-Dnabla:benchmarks=enabled did not register nabla's benchmarks"
installs=$(intro --installed "$tmp/app/build-all" "j.values()")
for f in bin/nabla include/nabla.h pkgconfig/nabla.pc man1/nabla.1 bin/app; do
    echo "$installs" | grep -q "$f\$" || fail "-Dnabla:install=enabled does not install $f"
done

# ---- 3. meson install + pkg-config ---------------------------------------------------------
meson setup "$tmp/inst-build" "$src" -Dtests=disabled -Dexamples=disabled -Dbenchmarks=disabled \
    --prefix="$tmp/prefix" --libdir=lib >/dev/null
ninja -C "$tmp/inst-build" install >/dev/null
p=$tmp/prefix
for f in include/nabla.h include/nabla/tensor.h lib/libnabla.so.0 lib/libnabla.a lib/pkgconfig/nabla.pc \
    bin/nabla share/man/man1/nabla.1; do
    [ -e "$p/$f" ] || fail "meson install did not install $f"
done
"$p/bin/nabla" --version | grep -q '^nabla ' || fail "the installed nabla command does not run"
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
# shared
# shellcheck disable=SC2046 # pkg-config prints a list of flags
cc -std=c11 "$src/tests/embed/consumer.c" -o "$tmp/consumer" $(pkg-config --cflags --libs nabla)
readelf -d "$tmp/consumer" | grep -q 'NEEDED.*libnabla\.so\.0' || fail "pkg-config: not linked with libnabla.so.0"
LD_LIBRARY_PATH="$p/lib" "$tmp/consumer" >/dev/null
# static: Meson resolves pkg-config --static's libraries to their archives (Debian ships no
# libcjson.a: that one stays shared, and a fully static program cannot be built)
mkdir "$tmp/static"
cp "$src/tests/embed/consumer.c" "$tmp/static/"
cat > "$tmp/static/meson.build" <<'MESON'
project('static_app', 'c', default_options: ['c_std=c11'])
executable('app', 'consumer.c', dependencies: dependency('nabla', static: true))
MESON
meson setup "$tmp/static/build" "$tmp/static" >/dev/null 2>&1
ninja -C "$tmp/static/build" >/dev/null
# the same with plain cc: the archive by -Bstatic, its private dependencies by pkg-config --static
# shellcheck disable=SC2046
cc -std=c11 "$src/tests/embed/consumer.c" -o "$tmp/consumer-static" $(pkg-config --cflags nabla) \
    -Wl,--as-needed -Wl,-Bstatic -lnabla -Wl,-Bdynamic $(pkg-config --static --libs nabla)
for exe in "$tmp/static/build/app" "$tmp/consumer-static"; do
    if readelf -d "$exe" | grep -q 'NEEDED.*libnabla'; then fail "$exe: linked with the shared libnabla"; fi
    nm "$exe" | grep -q ' T nb_linear_new$' || fail "$exe: nb_linear_new is not linked in"
    "$exe" >/dev/null
done
# only the public API is exported
if nm -D --defined-only "$p/lib/libnabla.so.0" | grep -q ' nb__\| nb_k_'; then
    fail "internal nb__ or nb_k_ (kernel) symbols are exported"
fi
echo "embedding: subproject (library only by default, everything on request), install, pkg-config" \
    "shared and static, exported symbols OK"
