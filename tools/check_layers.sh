#!/bin/sh
# check_layers.sh SOURCE_ROOT [LIBRARY] - dependencies point downward only, as docs/DESIGN.md
# ("Layers") draws them.
#
# Every file of src/<layer>/ (.c and .h) may include the internal headers of its own layer and
# of the layers below it, and the public headers (include/nabla/*.h) of those layers; never the
# umbrella nabla.h. Every public header may include only public headers of the layers below its
# own. With LIBRARY (the static libnabla.a) it also reads the objects' symbols: a function of a
# layer may call only functions defined in its own layer or below (this sees what the includes
# cannot: core's public header tensor.h declares the ops too). Each violation is printed as
# "path:line: ..." and the script exits 1; 0 when the layers hold.
set -eu
root=$1 lib=${2:-}

layers="core kernels autograd ops nn loss optim sched data io dist"
# The layers each layer may use (itself included). Keep in step with docs/DESIGN.md.
may_use() {
    case $1 in
    core) echo "core" ;;
    kernels) echo "kernels core" ;;
    autograd) echo "autograd kernels core" ;;
    ops) echo "ops autograd kernels core" ;;
    nn) echo "nn ops autograd kernels core" ;;
    loss) echo "loss ops autograd kernels core" ;;
    optim) echo "optim ops autograd kernels core" ;;
    sched) echo "sched optim ops autograd kernels core" ;;
    data) echo "data kernels core" ;;
    dist) echo "dist optim nn ops autograd kernels core" ;;
    io) echo "io data sched optim nn ops autograd kernels core" ;;
    *) echo "" ;;
    esac
}
# The layer a public header belongs to.
public_layer() {
    case $1 in
    error | core | tensor | value) echo core ;;
    *) echo "$1" ;;
    esac
}
allows() { # allows LAYER OTHER
    case " $(may_use "$1") " in
    *" $2 "*) return 0 ;;
    *) return 1 ;;
    esac
}

bad=$(mktemp)
incs=$(mktemp)
trap 'rm -f "$bad" "$incs"' EXIT

# The target of every #include "..." (and <nabla...>) of a file: "line file-relative-name".
includes() {
    awk '/^[ \t]*#[ \t]*include[ \t]*("|<nabla)/ {
             s = $0; sub(/^[^"<]*["<]/, "", s); sub(/[">].*$/, "", s); print FNR, s }' "$1"
}

src=$(cd "$root/src" && pwd -P)/ pub=$(cd "$root/include" && pwd -P)/
for dir in "$root"/src/*/; do
    layer=$(basename "$dir")
    if [ -z "$(may_use "$layer")" ]; then
        echo "src/$layer/: a folder in no layer (add it to tools/check_layers.sh and docs/DESIGN.md)" >>"$bad"
        continue
    fi
    for f in "$dir"*.c "$dir"*.h; do
        [ -e "$f" ] || continue
        rel=src/$layer/$(basename "$f")
        includes "$f" >"$incs"
        while read -r line inc; do
            if [ -e "$dir$inc" ]; then
                target=$(cd "$(dirname "$dir$inc")" && pwd -P)/$(basename "$inc")
            elif [ -e "$root/include/$inc" ]; then
                target=$(cd "$(dirname "$root/include/$inc")" && pwd -P)/$(basename "$inc")
            else
                continue # a system header
            fi
            case $target in
            "$pub"nabla.h) echo "$rel:$line: includes the umbrella nabla.h (every layer)" >>"$bad" ;;
            "$pub"nabla/*.h)
                name=$(basename "$target" .h) other=$(public_layer "$name")
                allows "$layer" "$other" ||
                    echo "$rel:$line: $layer includes nabla/$name.h (layer $other)" >>"$bad" ;;
            "$src"*/*)
                other=${target#"$src"} other=${other%%/*}
                allows "$layer" "$other" ||
                    echo "$rel:$line: $layer includes src/$other/$(basename "$target")" >>"$bad" ;;
            esac
        done <"$incs"
    done
done

for f in "$root"/include/nabla/*.h; do
    name=$(basename "$f" .h) layer=$(public_layer "$(basename "$f" .h)")
    if [ -z "$(may_use "$layer")" ]; then
        echo "include/nabla/$name.h: a public header of no layer (tools/check_layers.sh)" >>"$bad"
        continue
    fi
    includes "$f" >"$incs"
    while read -r line inc; do
        [ -e "$root/include/nabla/$inc" ] || continue
        other=$(public_layer "$(basename "$inc" .h)")
        allows "$layer" "$other" ||
            echo "include/nabla/$name.h:$line: $layer includes $inc (layer $other)" >>"$bad"
    done <"$incs"
done

# Calls: every undefined nb* symbol of an object, against the layer of the object defining it.
if [ -n "$lib" ]; then
    if ! command -v nm >/dev/null 2>&1; then
        echo "SKIP: nm is not installed (the calls were not checked)"
        exit 77
    fi
    table=
    for l in $layers; do table="$table$l=$(may_use "$l" | tr ' ' ,);"; done
    nm -A "$lib" 2>/dev/null | awk -v table="$table" '
        BEGIN { n = split(table, t, ";"); for (i = 1; i < n; i++) { split(t[i], kv, "="); use[kv[1]] = "," kv[2] "," } }
        {   m = split($0, p, ":"); member = p[2]; rest = p[3]
            if (member !~ /^src_/) next
            split(member, q, "_"); layer = q[2]
            k = split(rest, w, " ")
            if (k == 2 && w[1] == "U" && w[2] ~ /^nb/) { need[member, w[2]] = 1; members[member] = layer }
            else if (k == 3 && w[2] ~ /^[TDBRGSVW]$/ && w[3] ~ /^nb/) def[w[3]] = layer
        }
        END {
            for (key in need) {
                split(key, kk, SUBSEP); member = kk[1]; sym = kk[2]; layer = members[member]
                if (!(sym in def) || index(use[layer], "," def[sym] ","))
                    continue
                file = member; sub(/\.o$/, "", file); sub(/^src_/, "src/", file); sub(/_/, "/", file)
                printf "%s: %s calls %s (layer %s)\n", file, layer, sym, def[sym]
            }
        }' | sort >>"$bad"
fi

if [ -s "$bad" ]; then
    echo "upward dependencies (docs/DESIGN.md, \"Layers\"):"
    cat "$bad"
    exit 1
fi
echo "layers hold: $(echo "$layers" | wc -w) layers, every include${lib:+ and call} points downward"
