#!/bin/sh
# check-includes-test.sh — tools/check-includes.sh on tiny trees made here: a layered tree
# passes; a loop between two folders, an include going up, peers including each other, a
# part outside the layer order and a stale allowlist entry each fail, naming file:line; an
# allowlisted include passes. Run by `make check-includes`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
check=$here/check-includes.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/check-includes-test.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
failures=0

# tree NAME FILE 'LINES' [FILE 'LINES' …]: writes files under $work/NAME/src.
tree() {
    name=$1
    shift
    while [ $# -gt 1 ]; do
        mkdir -p "$(dirname "$work/$name/src/$1")"
        printf '%s\n' "$2" >"$work/$name/src/$1"
        shift 2
    done
}

# expect pass|fail NAME [ALLOW_LINES] [NEEDLE …]: runs the check on NAME's tree (with
# ALLOW_LINES as its allowlist, empty for none) and wants that outcome and every needle.
expect() {
    want=$1 name=$2 allow=$3
    shift 3
    printf '%s\n' "$allow" >"$work/$name.allow"
    if "$check" --allow "$work/$name.allow" "$work/$name/src" >"$work/$name.out" 2>&1; then got=pass; else got=fail; fi
    ok=1
    [ "$got" = "$want" ] || ok=0
    for needle in "$@"; do
        grep -F -- "$needle" "$work/$name.out" >/dev/null || ok=0
    done
    if [ $ok = 1 ]; then
        echo "ok   $name: $want"
    else
        echo "FAIL $name: wanted $want with: $*; got $got:"
        sed 's/^/    /' "$work/$name.out"
        failures=$((failures + 1))
    fi
}

tree layered \
    main.c '#include "gateway/gateway.h"' \
    gateway/gateway.c '#include "gateway/gateway.h"
#include "routing/routing.h"
#include "providers/prepare.h"' \
    gateway/gateway.h '#include "config/config.h"' \
    routing/routing.h '#include "config/config.h"
#include "util/arena.h"' \
    providers/prepare.h '#include "config/config.h"' \
    config/config.h '#include "catalog.h"
#include "util/arena.h"
#include "not-ours.h"' \
    config/catalog.h '#include "util/arena.h"' \
    util/arena.h '/* a leaf */'
expect pass layered '' 'keep to the layers'

tree loop \
    config/config.h '#include "util/alloc.h"

#include "routing/routing.h"' \
    routing/routing.h '#include "config/config.h"' \
    util/alloc.h '/* a leaf */'
expect fail loop '' 'loop between folders: config -> routing -> config' \
    "$work/loop/src/config/config.h:3 includes \"routing/routing.h\"" \
    "$work/loop/src/routing/routing.h:1 includes \"config/config.h\"" \
    "$work/loop/src/config/config.h:3: config -> routing"

# The loop's upward edge allowlisted: what is left keeps to the layers.
expect pass loop 'config/config.h routing/routing.h' 'keep to the layers; 1 known violations allowed'
# An entry that matches no include fails, so the list only shrinks.
expect fail loop 'config/config.h routing/routing.h
util/alloc.h config/config.h' 'no longer found, remove it from the allowlist: util/alloc.h config/config.h'

tree upward \
    util/json.c '#include "util/json.h"
#include "config/catalog.h"' \
    util/json.h '' \
    config/catalog.h ''
expect fail upward '' "$work/upward/src/util/json.c:2: util -> catalog" 'catalog is above util'

tree peers \
    routing/tree.c '#include "providers/provider.h"' \
    providers/provider.h ''
expect fail peers '' "$work/peers/src/routing/tree.c:1: routing -> providers" 'on the same layer'

tree forbidden \
    providers/provider.h '#include "server/request.h"' \
    server/request.h ''
expect fail forbidden '' "$work/forbidden/src/providers/provider.h:1: providers -> server" 'may not include server'

tree unknown \
    semantic/semantic.c '#include "util/alloc.h"' \
    util/alloc.h ''
expect fail unknown '' "$work/unknown/src/semantic/semantic.c:1: semantic -> util" 'semantic is not in the layer order'

if [ $failures -ne 0 ]; then
    echo "check-includes-test: $failures case(s) failed" >&2
    exit 1
fi
echo "check-includes-test: every case behaved"
