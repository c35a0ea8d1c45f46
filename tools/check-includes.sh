#!/bin/sh
# check-includes.sh — the layers of src/, written down once, and the check that every
# `#include "…"` keeps to them. Run by `make check-includes` (and so by `make test`).
#
#   tools/check-includes.sh [--allow FILE] [SRC]
#
# SRC defaults to src. --allow FILE replaces the known-violations list below with FILE's
# lines (the script's own test uses it; /dev/null for none). Exits 1, naming file:line and
# the edge, when an include goes up or sideways in the layer order, when the folders include
# each other in a loop, or when an allowed violation is no longer there (the list only
# shrinks). POSIX sh and awk only: CI machines have no python.

# The layers, top first. A part may include only parts on lower lines; parts on the same line
# do not include each other (top, `aigw top`, is a client of the admin API beside admin's own
# CLI: it reads config and util only). A part is a folder of src/, except:
#   main     src/main.c, which wires everything
#   catalog  src/config/catalog.*, the model catalog: a leaf of config that the request's
#            types may name without seeing the rest of config
LAYERS='
main
gateway
pipeline
admin top
routing router providers observe access limits cache prompts reasoning ui
store
server
upstream
config
catalog
util
'

# Edges that go down the order and are still refused: the modules the stages use do not reach
# into the HTTP server.
FORBIDDEN='
routing server
providers server
observe server
access server
store server
admin server
limits server
cache server
prompts server
ui server
'

# Known violations: "FILE INCLUDED" (paths from src/), each with the change that removes it.
# Everything else must keep to the layers with no entry here.
ALLOW='
'

set -eu
allow_file=
while [ $# -gt 0 ]; do
    case $1 in
    --allow)
        allow_file=$2
        shift 2
        ;;
    -*)
        echo "usage: $0 [--allow FILE] [SRC]" >&2
        exit 2
        ;;
    *) break ;;
    esac
done
src=${1:-src}
[ -d "$src" ] || {
    echo "check-includes: $src is not a directory" >&2
    exit 2
}
if [ -n "$allow_file" ]; then
    allow=$(cat "$allow_file")
else
    allow=$ALLOW
fi

files=$(cd "$src" && find . -type f \( -name '*.c' -o -name '*.h' \) | sed 's|^\./||' | LC_ALL=C sort)
[ -n "$files" ] || {
    echo "check-includes: no .c or .h files under $src" >&2
    exit 2
}

# One record per quoted include: FILE<TAB>LINE<TAB>INCLUDED, after the list of files.
{
    printf '%s\n' "$files" | awk '{ print "F\t" $0 }'
    for f in $files; do
        awk -v f="$f" '
            /^[ \t]*#[ \t]*include[ \t]*"/ {
                s = $0
                sub(/^[^"]*"/, "", s)
                sub(/".*$/, "", s)
                printf "I\t%s\t%d\t%s\n", f, FNR, s
            }' "$src/$f"
    done
} | awk -F '\t' -v layers="$LAYERS" -v forbidden="$FORBIDDEN" -v allow="$allow" -v src="$src" '
function part(path,    n, seg) {
    if (path == "main.c") return "main"
    if (index(path, "config/catalog.") == 1) return "catalog"
    n = split(path, seg, "/")
    if (n == 1) return "(top level)"
    return seg[1]
}
# The path an include names, from src/: "dir/file.h" is from src/; "file.h" is next to the
# including file (a part including its own headers).
function resolve(from, inc,    d) {
    if (index(inc, "/")) return inc
    d = from
    if (!sub(/\/[^\/]*$/, "", d)) return inc
    return d "/" inc
}
function complain(msg) {
    print "check-includes: " msg
    failed = 1
}
BEGIN {
    nl = split(layers, line, "\n")
    rank_of_line = 0
    for (i = 1; i <= nl; i++) {
        np = split(line[i], names, " ")
        if (np == 0) continue
        rank_of_line++
        for (j = 1; j <= np; j++) rank[names[j]] = rank_of_line
    }
    nf = split(forbidden, fl, "\n")
    for (i = 1; i <= nf; i++) if (split(fl[i], pair, " ") == 2) refused[pair[1] SUBSEP pair[2]] = 1
    na = split(allow, al, "\n")
    nallow = 0
    for (i = 1; i <= na; i++) {
        if (al[i] ~ /^[ \t]*(#|$)/) continue
        if (split(al[i], pair, " ") != 2) {
            complain("allowlist line not \"FILE INCLUDED\": " al[i])
            continue
        }
        allowed[pair[1] SUBSEP pair[2]] = 1
        allow_order[++nallow] = pair[1] SUBSEP pair[2]
    }
    nparts = 0
}
$1 == "F" { exists[$2] = 1; next }
$1 == "I" {
    file = $2; lineno = $3; inc = $4
    target = resolve(file, inc)
    if (!(target in exists)) next # not a file of src/ (a library header in quotes)
    from = part(file); to = part(target)
    if (from == to) next
    where = src "/" file ":" lineno
    edge = from " -> " to " (includes \"" inc "\")"
    if ((file SUBSEP inc) in allowed) { used[file SUBSEP inc] = 1; next }
    nincludes++
    if (!(from in rank)) { complain(where ": " edge ": " from " is not in the layer order (LAYERS in tools/check-includes.sh)"); next }
    if (!(to in rank)) { complain(where ": " edge ": " to " is not in the layer order (LAYERS in tools/check-includes.sh)"); next }
    if (rank[from] == rank[to])
        complain(where ": " edge ": " from " and " to " are on the same layer and do not include each other")
    else if (rank[from] > rank[to])
        complain(where ": " edge ": " to " is above " from " in the layer order")
    else if ((from SUBSEP to) in refused)
        complain(where ": " edge ": " from " may not include " to " (FORBIDDEN in tools/check-includes.sh)")
    # the folder graph, for loops: one example include per edge
    if (!((from SUBSEP to) in example)) {
        example[from SUBSEP to] = where " includes \"" inc "\""
        nout[from]++
        out[from, nout[from]] = to
        if (!(from in seen_part)) { seen_part[from] = 1; parts[++nparts] = from }
        if (!(to in seen_part)) { seen_part[to] = 1; parts[++nparts] = to }
    }
}
# Depth-first search; a part met again while on the stack closes a loop.
function visit(p,    i, q, k, msg, path) {
    state[p] = 1
    stack[++depth] = p
    for (i = 1; i <= nout[p]; i++) {
        q = out[p, i]
        if (state[q] == 1) {
            for (k = depth; stack[k] != q; k--) ;
            msg = "loop between folders: "
            for (path = k; path <= depth; path++) msg = msg stack[path] " -> "
            msg = msg q
            for (path = k; path < depth; path++) msg = msg "\n    " example[stack[path], stack[path + 1]]
            msg = msg "\n    " example[p, q]
            complain(msg)
        } else if (state[q] == 0) {
            visit(q)
        }
    }
    depth--
    state[p] = 2
}
END {
    depth = 0
    for (i = 1; i <= nparts; i++) if (state[parts[i]] == 0) visit(parts[i])
    for (i = 1; i <= nallow; i++)
        if (!(allow_order[i] in used)) {
            split(allow_order[i], pair, SUBSEP)
            complain("allowed include no longer found, remove it from the allowlist: " pair[1] " " pair[2])
        }
    if (!failed) {
        printf "check-includes: %d includes between parts of %s keep to the layers; %d known violations allowed\n", nincludes, src, nallow
        exit 0
    }
    if (failed) {
        print "check-includes: the layers, top first (a part includes only parts below it):" layers_text()
        exit 1
    }
}
function layers_text(    i, s) {
    s = ""
    for (i = 1; i <= nl; i++) if (line[i] != "") s = s "\n    " line[i]
    return s
}
'
