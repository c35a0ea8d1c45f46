#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang (ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 30) on a scratch copy of its committed seed corpus. Exits non-zero on
# any crash or sanitizer report. Needs clang and libclang-rt-dev from Debian (installed if root).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "fuzz: needs clang and libclang-rt-14-dev" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
fi
out=build-fuzz
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc $(pkg-config --cflags jansson libuv)"
clang $flags tests/fuzz/fuzz_json.c src/util/json.c src/util/arena.c src/util/buf.c src/util/alloc.c \
    $(pkg-config --libs jansson) -o "$out/fuzz_json"
clang $flags tests/fuzz/fuzz_cache_key.c src/cache/cache_key.c src/util/{json,arena,buf,alloc}.c \
    $(pkg-config --libs jansson libsodium) -o "$out/fuzz_cache_key"
clang $flags tests/fuzz/fuzz_reqlog_batch.c src/store/reqlog_batch.c src/util/{buf,alloc}.c -o "$out/fuzz_reqlog_batch"
clang $flags tests/fuzz/fuzz_sse.c src/upstream/sse.c src/util/buf.c src/util/alloc.c -o "$out/fuzz_sse"
clang $flags tests/fuzz/fuzz_h1.c src/upstream/h1_parse.c -o "$out/fuzz_h1"
clang $flags tests/fuzz/fuzz_translate.c src/providers/{translate,xlate,openai,anthropic,anthropic_stream,gemini,presets,responses,responses_stream,response_store}.c \
    src/config/catalog.c src/config/catalog_data.S src/upstream/sse.c src/util/{arena,buf,alloc,json,headers,units,lru}.c \
    $(pkg-config --libs jansson) -o "$out/fuzz_translate"
clang $flags tests/fuzz/fuzz_route.c src/gateway/gateway.c src/routing/{build,tree,route_cache,walk,condition,health,auto}.c \
    src/config/*.c src/config/catalog_data.S src/prompts/*.c src/router/*.c src/router/router_data.S src/providers/{presets,prepare}.c \
    src/util/{arena,buf,alloc,json,units,url,log,conninfo}.c \
    $(pkg-config --cflags --libs jansson libcurl yaml-0.1 libpcre2-8) -lpthread -lm -o "$out/fuzz_route"
clang $flags tests/fuzz/fuzz_mustache.c src/prompts/mustache.c src/util/{buf,alloc}.c \
    $(pkg-config --libs jansson) -o "$out/fuzz_mustache"
clang $flags tests/fuzz/fuzz_top_metrics.c src/top/top_metrics.c -lm -o "$out/fuzz_top_metrics"
clang $flags tests/fuzz/fuzz_router.c src/router/*.c src/router/router_data.S src/util/alloc.c -lm -o "$out/fuzz_router"
# The connection state machine on a real loop, serving a stub application (the server needs
# nothing above it: that is the point of its http_app interface).
clang $flags -Itests/fuzz tests/fuzz/fuzz_conn.c tests/fuzz/stub_pipeline.c src/server/{http_conn,http_body,http_response}.c \
    src/util/{arena,buf,alloc,headers}.c \
    $(pkg-config --libs libuv) -lhttp_parser -lpthread -lm -o "$out/fuzz_conn"
for target in ${FUZZ_TARGETS:-json cache_key reqlog_batch sse h1 translate route conn router mustache top_metrics}; do
    work="$out/corpus-$target"
    mkdir -p "$work"
    cp tests/fuzz/corpus/"$target"/* "$work"/
    echo "== fuzz_$target for ${seconds}s"
    log="$out/fuzz_$target.log"
    dict=()
    [ -f tests/fuzz/"$target".dict ] && dict=(-dict=tests/fuzz/"$target".dict)
    if ! "$out/fuzz_$target" -max_total_time="$seconds" -timeout=10 -max_len=65536 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$out/" "$work" >"$log" 2>&1; then
        # The whole report: the sanitizer's stack or the differential abort, and the input.
        grep -v '^#[0-9]' "$log" | tail -60
        echo "fuzz_$target found a failure (reproducer: $(ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* 2>/dev/null | head -1))" >&2
        exit 1
    fi
    tail -6 "$log"
done
