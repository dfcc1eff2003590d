#!/bin/sh
# fuzz.sh - build the libFuzzer harnesses (tests/fuzz/) with clang, ASan and UBSan, and run each
# for a bounded time. Needs Debian's clang and libclang-rt-14-dev (exits 77, "skipped", without).
#
#   tools/fuzz.sh                 60 s per target
#   tools/fuzz.sh 600             10 minutes per target
#   tools/fuzz.sh 10 ckpt         one target, briefly (what `tools/nabla test` runs)
#
# Targets: ckpt (nb_ckpt_parse + applying to live SGD/Adam training setups), idx (nb_idx_parse,
# nb_idx_load of raw and gzip'd files, nb_mnist_load of a split), csv (nb_csv_parse), npy
# (nb_npy_parse).
# Corpora grow in build-fuzz/corpus-<target>/ (seeded by the harnesses); a crash, leak or
# sanitizer report stops the run, leaves build-fuzz/crash-* and makes this script fail. So does
# memory: more than 1 GiB of RSS, or one allocation over -malloc_limit_mb (ckpt: 32 MiB, where
# the harness reads at most 16 MiB of tensor data; idx: 192 MiB, as an input of 64 KiB inflates
# to at most ~66 MiB and the reader grows by doubling; csv and npy: 192 MiB too, their arrays
# bounded by max_bytes, 1 MiB in the harnesses). A reader that sized its memory by what a
# header promises trips them (ckpt's seed corpus holds a 48 MiB bomb); the harnesses also
# assert a peak themselves, through nabla's allocator hooks (tests/peak_alloc.h).
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-ckpt idx csv npy}
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang not found: skipped (apt-get install clang libclang-rt-14-dev)"
    exit 77
fi
OUT=build-fuzz
mkdir -p "$OUT/obj"
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -D_DEFAULT_SOURCE -DNB_NO_TARGET_CLONES \
 -fsanitize=address,undefined -fno-sanitize-recover=undefined -Iinclude $(pkg-config --cflags libcjson)"
LIBS="$(pkg-config --libs libcjson) -lcsv -lz -lm -lpthread"
# the library, instrumented for coverage (built-in GEMM: no BLAS)
objs=""
for src in src/*/*.c; do
    obj="$OUT/obj/$(echo "$src" | tr / _).o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find include src -name '*.h' -newer "$obj" | head -1)" ]; then
        clang $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
    fi
    objs="$objs $obj"
done
status=0
for t in $TARGETS; do
    clang $CFLAGS -fsanitize=fuzzer "tests/fuzz/fuzz_$t.c" $objs $LIBS -o "$OUT/fuzz_$t"
    corpus="$OUT/corpus-$t"
    mkdir -p "$corpus"
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    limit=192
    [ "$t" = ckpt ] && limit=32
    echo "fuzz.sh: $t for ${SECS}s"
    if ! NB_FUZZ_SEEDS="$corpus" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        "./$OUT/fuzz_$t" $dict -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=1024 -malloc_limit_mb=$limit \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$OUT/" "$corpus" >"$OUT/fuzz_$t.log" 2>&1; then
        echo "fuzz.sh: $t FAILED (see $OUT/fuzz_$t.log and $OUT/crash-*)"
        tail -40 "$OUT/fuzz_$t.log"
        status=1
    else
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "$OUT/fuzz_$t.log" | sed "s/^/  $t: /"
        echo "  $t: corpus $(ls "$corpus" | wc -l) inputs, no crash, leak or sanitizer report"
    fi
done
exit $status
