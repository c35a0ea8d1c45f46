#!/usr/bin/env bash
# bench/profile.sh — where one aigw worker's instructions go, per request (valgrind callgrind).
# One worker serves plain JSON requests (the fast path, access log on, to a file) from aigw-mock;
# the same is run with 1 request and with N, and the difference divided by N − 1, so start-up
# and shutdown cancel out. Prints instructions per request by library (libcurl, libc,
# malloc/free, http-parser, libuv, jansson, aigw), aigw's own by source folder/file, and who
# calls libc's printf/scanf family (bench/callgrind_breakdown.py does the grouping).
#
#   bench/profile.sh                   N=2000 requests, one connection, access log on
#   N=5000 MODE=stream ACCESS_LOG=off AIGW_BIN=… bench/profile.sh
#   MODE=responses (or responses-stream) bench/profile.sh     OpenAI's Responses API, translated
#   to the mock's chat completions; RESPONSES=native forwards it to the mock's /v1/responses
#   AUTH=on bench/profile.sh           with gateway keys: a key made by `aigw keys create` in a
#                                      SQLite store, sent by every request (docs/access.md)
#   AUTH=on REQUEST_LOG=off …          the same without the request log (on by default with a store;
#                                      here with batch_delay 60s: batches of 1,024, as under load)
#   CACHE=on bench/profile.sh          the response cache on: every request after the first is a
#                                      hit, answered from memory without an upstream call
#   CACHE=refresh bench/profile.sh     the cache on and every request sent with x-aigw-cache:
#                                      refresh: each goes upstream and its reply is stored (what a
#                                      miss costs the cache)
#   TRACING=on bench/profile.sh        every request traced (sample_ratio 1) and its spans exported
#                                      to an OTLP sink here (a node server answering 200), in full
#                                      batches of 256 as under load (batch_delay 60s: how many
#                                      POSTs a run makes no longer depends on how fast callgrind
#                                      runs; the rest go at shutdown); TRACE_PROTOCOL=http/json for
#                                      JSON bodies
#   KEEP=/tmp/dir bench/profile.sh     keeps the callgrind files there (never in the repository), and
#                                      with AUTH=on the store of the N-request run
#
# Callgrind counts the same for the same binary and input whatever else the machine runs; the
# figures move by a few hundred instructions with how requests fall into loop iterations.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
MODE=${MODE:-json}
ACCESS_LOG=${ACCESS_LOG:-on}
AUTH=${AUTH:-off}
TRACING=${TRACING:-off}
REQUEST_LOG=${REQUEST_LOG:-default}
CACHE=${CACHE:-off}
command -v valgrind >/dev/null || { echo "profile: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
[ -x build/aigw ] && [ -x build/aigw-mock ] || make -s all
. bench/lib.sh
start_mock
port=$(free_port)
cat > "$work/aigw.yaml" <<CONF
listen: 127.0.0.1:$port
workers: 1
access_log: $([ "$ACCESS_LOG" = on ] && echo "$work/access.log" || echo off)
providers:
  - {name: mock, base_url: '${UPSTREAM_URL:-http://127.0.0.1:$mock_port/v1}', models: [mock-model],
     responses: ${RESPONSES:-translate}}
CONF
[ "$CACHE" != off ] && echo 'cache: {mode: simple}' >>"$work/aigw.yaml"
[ "$CACHE" = refresh ] && export BENCH_HEADERS='{"x-aigw-cache":"refresh"}'
if [ "$TRACING" = on ]; then
    sink_port=$(free_port)
    node -e 'require("http").createServer((q,s)=>{q.resume();q.on("end",()=>s.end("{}"))}).listen(+process.argv[1],"127.0.0.1")' \
        "$sink_port" &
    pids+=($!)
    printf 'tracing: {endpoint: "http://127.0.0.1:%s/v1/traces", sample_ratio: 1, batch_delay: 60s%s}\n' "$sink_port" \
        "${TRACE_PROTOCOL:+, protocol: $TRACE_PROTOCOL}" >>"$work/aigw.yaml"
fi
if [ "$AUTH" = on ]; then
    # batch_delay 60s: a worker's batch goes to the store's thread at 1,024 requests, as under
    # load, not every 250 ms with however few requests callgrind's pace let through
    [ "$REQUEST_LOG" = off ] && echo 'request_log: off' >>"$work/aigw.yaml" ||
        echo 'request_log: {batch_delay: 60s}' >>"$work/aigw.yaml"
    printf 'auth: {master_key: bench-master-key-0123456789, store: %s}\n' "$work/aigw.db" >>"$work/aigw.yaml"
    BENCH_KEY=$("${AIGW_BIN:-build/aigw}" keys create -c "$work/aigw.yaml" --direct --alias bench --json |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')
    export BENCH_KEY
fi

# profile REQUESTS OUTFILE: one aigw under callgrind serving REQUESTS requests on one connection.
profile() {
    valgrind --tool=callgrind --callgrind-out-file="$2" "${AIGW_BIN:-build/aigw}" serve -c "$work/aigw.yaml" \
        >/dev/null 2>"$work/valgrind.err" &
    local pid=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    # /healthz above is one more request in both runs: it cancels out.
    local path=/v1/chat/completions
    case "$MODE" in responses*) path=/v1/responses ;; esac
    node bench/requests.mjs "http://127.0.0.1:$port$path" "$1" "$MODE" ||
        { echo "profile: the requests failed" >&2; exit 1; }
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}

profile 1 "$work/cg.base"
profile "$N" "$work/cg.run"
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && cp "$work/cg.base" "$work/cg.run" "$KEEP"/
    if [ "$AUTH" = on ]; then cp "$work/aigw.db" "$KEEP"/; fi # the run's store: its request log
fi
echo "aigw $(git rev-parse --short HEAD 2>/dev/null), mode $MODE${RESPONSES:+ ($RESPONSES)}, access log $ACCESS_LOG, auth $AUTH, request log $REQUEST_LOG, cache $CACHE, tracing $TRACING, $N requests on one connection"
python3 bench/callgrind_breakdown.py "$work/cg.base" "$work/cg.run" 1 "$N"
