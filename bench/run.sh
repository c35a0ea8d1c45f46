#!/usr/bin/env bash
# bench/run.sh — aigw against the floor (nginx proxy_pass) and a peer (Portkey's gateway), all
# in front of the same aigw-mock, measured in one run so the ratios mean something on a shared
# machine. Everything listens on 127.0.0.1 only and is stopped on exit.
#
#   bench/run.sh                      all targets: direct nginx aigw portkey
#   bench/run.sh nginx aigw           some of them (also: aigw-curl, aigw with libcurl for every
#                                     URL; aigw-anthropic, the translated path;
#                                     aigw-fallback, a 3-target fallback tree with retries;
#                                     aigw-keys, gateway keys on: a key from the store, its rate
#                                     limits and its spend counted on every request;
#                                     aigw-obs, aigw-keys and all observability on: every request
#                                     traced (sample_ratio 1) to a local OTLP sink, and written to
#                                     the request log; aigw-cache, the response cache on: after
#                                     the check's first request every request is a hit, replayed
#                                     from memory without an upstream call)
#   bench/run.sh soak                 aigw at 32 connections for SOAK_SECONDS (600), RSS every 10 s
#                                     (SOAK_TARGET=aigw-churn: every request through retries,
#                                     fallbacks, a breaker and hedges)
#
# Env: DURATION (10s per point), WARMUP (2s), CONNS ("1 32"), MODES ("json stream"),
# AIGW_BIN (build/aigw: another build, for an A/B), ACCESS_LOG (on: aigw and nginx both write
# an access log line per request to a file; off: neither does).
#
# Fairness: nginx keeps client connections for 1,000,000 requests (its default, 1,000, would
# make wrk reconnect every 1,000 requests where aigw never closes) and its upstream connections
# alive (keepalive in the upstream block, HTTP/1.1, no Connection header passed on), as aigw
# pools its connections to the provider.
# Output: a markdown table on stdout and in bench/results/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-"1 32"}
MODES=${MODES:-"json stream"}
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_TARGET=${SOAK_TARGET:-aigw}
ACCESS_LOG=${ACCESS_LOG:-on}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(direct nginx aigw portkey)

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
if [ "$(id -u)" = 0 ]; then
    for p in wrk nginx-light; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p"; }
    done
fi
need wrk wrk
[ -x build/aigw ] && [ -x build/aigw-mock ] || make -s all

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_http() { # url, what
    for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "bench: $2 did not come up" >&2; exit 1
}
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
rss_kb() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)

# ---- the upstream -------------------------------------------------------------------------
MOCK_PORT=$(free_port)
build/aigw-mock --listen "127.0.0.1:$MOCK_PORT" --record 0 >/dev/null &
pids+=($!)
wait_http "http://127.0.0.1:$MOCK_PORT/v1/models" aigw-mock

# ---- targets: each sets URL, PIDS (whose CPU counts), EXTRA env for wrk ------------------------
start_direct() { URL="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"; PIDS=(); CUSTOM=""; }

start_nginx() {
    command -v nginx >/dev/null || { echo "bench: nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
    local port; port=$(free_port)
    mkdir -p "$work/nginx"
    cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
    $([ "$ACCESS_LOG" = on ] && echo "access_log $work/nginx/access.log;" || echo "access_log off;")
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF
    nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
    pids+=($!)
    URL="http://127.0.0.1:$port/v1/chat/completions"
    wait_http "http://127.0.0.1:$port/v1/models" nginx
    local master; master=$(cat "$work/nginx/nginx.pid")
    PIDS=("$master" $(pgrep -P "$master")); CUSTOM=""
}

# aigw with the mock as an OpenAI-compatible provider (the fast path), or as an Anthropic one
# (every request, reply and stream event translated: OpenAI client → Anthropic provider).
start_aigw() { start_aigw_as openai "http://127.0.0.1:$MOCK_PORT/v1"; }
# The same with libcurl for every URL (AIGW_UPSTREAM=curl): the plain-http client's gain.
start_aigw-curl() { AIGW_UPSTREAM=curl start_aigw_as openai "http://127.0.0.1:$MOCK_PORT/v1"; }
start_aigw-anthropic() { start_aigw_as anthropic "http://127.0.0.1:$MOCK_PORT"; }
# The routing machinery on the healthy path: the client's model is a route, a fallback over
# three providers (the same mock) with retries configured; the first target answers. Against
# `aigw` (one target, the default retry policy) this is the cost of the tree and its walk.
# Every failure path at once, for the soak: the first target always answers 503 (retried,
# then its breaker opens and half-opens every cooldown), the second is hedged against after
# 1 ms and often cancelled mid-flight, the third answers.
start_aigw-churn() {
    ROUTES="  - {name: broken, base_url: 'http://127.0.0.1:$MOCK_PORT/v1', models: [b0], headers: {x-mock-status: '503'}}
  - {name: slowish, base_url: 'http://127.0.0.1:$MOCK_PORT/v1', models: [b1], headers: {x-mock-ttfb-ms: '2'}}
routing:
  breaker: {failures: 5, cooldown: 2s}
routes:
  - name: mock-model
    strategy: {mode: fallback, hedge: 1ms}
    retry: {attempts: 1, base_delay: 1ms}
    targets:
      - {provider: broken, model: mock-model}
      - {provider: slowish, model: mock-model}
      - {provider: mock, model: mock-model}" start_aigw_as openai "http://127.0.0.1:$MOCK_PORT/v1"
}

start_aigw-fallback() {
    ROUTES="  - {name: backup1, base_url: 'http://127.0.0.1:$MOCK_PORT/v1', models: [b1]}
  - {name: backup2, base_url: 'http://127.0.0.1:$MOCK_PORT/v1', models: [b2]}
routes:
  - name: mock-model
    strategy: {mode: fallback, on_status_codes: [429, 500, 502, 503, 504]}
    retry: {attempts: 3, base_delay: 100ms}
    targets:
      - {provider: mock, model: mock-model}
      - {provider: backup1, model: mock-model}
      - {provider: backup2, model: mock-model}" start_aigw_as openai "http://127.0.0.1:$MOCK_PORT/v1"
}
# Gateway keys on: every request's key looked up, its budget checked, its rate limits counted
# (requests and tokens per minute, set far above what the run sends) and its spend tallied (the
# store in the scratch directory, written by its own thread).
start_aigw-keys() {
    AUTH_YAML="auth: {master_key: bench-master-key-0123456789, store: $work/keys.db}" \
        start_aigw_as openai "http://127.0.0.1:$MOCK_PORT/v1"
    BENCH_KEY=$(curl -s "${URL%/v1/*}/admin/keys" -H 'Authorization: Bearer bench-master-key-0123456789' \
        -d "{\"key_alias\":\"bench-$RANDOM\",\"rpm_limit\":1000000000,\"tpm_limit\":1000000000000,\"max_budget\":1000000}" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')
    export BENCH_KEY
}
# aigw-keys and everything observability adds: every request traced and exported (to a sink
# that answers 200, a process of its own: its CPU is not the gateway's) and kept in the request
# log (the store's thread writes it). Metrics are always on.
start_aigw-obs() {
    local sink_port; sink_port=$(free_port)
    node -e 'require("http").createServer((q, s) => { q.resume(); q.on("end", () => s.end("{}")); }).listen(+process.argv[1], "127.0.0.1")' "$sink_port" &
    pids+=($!)
    EXTRA_YAML="tracing: {endpoint: 'http://127.0.0.1:$sink_port/v1/traces', sample_ratio: 1, batch_delay: 200ms}
request_log: {queue: 100000}" start_aigw-keys
}
# Every request the same, so every one after the first is answered from the memory cache.
start_aigw-cache() {
    EXTRA_YAML="cache: {mode: simple}" start_aigw_as openai "http://127.0.0.1:$MOCK_PORT/v1"
}
start_aigw_as() {
    local port; port=$(free_port)
    cat > "$work/aigw.yaml" <<CONF
listen: 127.0.0.1:$port
workers: 1
access_log: $([ "$ACCESS_LOG" = on ] && echo "$work/aigw-access.log" || echo off)
providers:
  - name: mock
    type: $1
    base_url: $2
    models: [mock-model]
${ROUTES:-}
${AUTH_YAML:-}
${EXTRA_YAML:-}
CONF
    AIGW_UPSTREAM=${AIGW_UPSTREAM:-} "${AIGW_BIN:-build/aigw}" serve -c "$work/aigw.yaml" 2>"$work/aigw.err" &
    pids+=($!)
    PIDS=($!); CUSTOM=""
    URL="http://127.0.0.1:$port/v1/chat/completions"
    wait_http "http://127.0.0.1:$port/healthz" aigw
}

start_portkey() {
    [ -d bench/node_modules/@portkey-ai/gateway ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
    local port; port=$(free_port)
    (cd bench && exec node --require ./portkey-loopback.cjs node_modules/@portkey-ai/gateway/build/start-server.js \
        --port="$port" --headless >"$work/portkey.log" 2>&1) &
    pids+=($!)
    PIDS=($!); CUSTOM="http://127.0.0.1:$MOCK_PORT/v1"
    URL="http://127.0.0.1:$port/v1/chat/completions"
    wait_http "http://127.0.0.1:$port/" portkey
    if ss -ltnp 2>/dev/null | grep ":$port " | grep -qv "127.0.0.1:$port"; then
        echo "bench: portkey is listening beyond loopback; refusing to go on" >&2; exit 1
    fi
}

# One request through the target must be a correct reply before anything is measured.
check_target() {
    local name=$1 body='{"model":"mock-model","messages":[{"role":"user","content":"check"}]}'
    local h=(-H 'Content-Type: application/json' -H "Authorization: Bearer ${BENCH_KEY:-bench-key}")
    [ -n "$CUSTOM" ] && h+=(-H 'x-portkey-provider: openai' -H "x-portkey-custom-host: $CUSTOM")
    curl -s "${h[@]}" "$URL" -d "$body" | grep -q '"mock reply to: check"' ||
        { echo "bench: $name did not return the mock's reply" >&2; exit 1; }
    STREAM_OK=1
    if ! curl -s -N "${h[@]}" "$URL" -d "${body%\}},\"stream\":true}" | grep -q 'data: \[DONE\]'; then
        # A target that cannot stream is reported, and its stream rows are left out.
        STREAM_OK=0
        echo "bench: $name did not stream to [DONE]; its stream rows are skipped" >&2
        echo "$name: streaming failed the check (a stream through it did not end with data: [DONE])" >> "$work/notes"
    fi
}

results="$work/results.tsv"
: > "$results"
: > "$work/notes"
measure() { # name mode conns
    local name=$1 mode=$2 c=$3 stream=0
    [ "$mode" = stream ] && stream=1
    BENCH_STREAM=$stream BENCH_CUSTOM_HOST=$CUSTOM wrk -t1 -c"$c" -d"$WARMUP" -s bench/chat.lua "$URL" >/dev/null
    local rss0=0 t0=0
    [ ${#PIDS[@]} -gt 0 ] && { rss0=$(rss_kb "${PIDS[@]}"); t0=$(cpu_ticks "${PIDS[@]}"); }
    local out
    out=$(BENCH_STREAM=$stream BENCH_CUSTOM_HOST=$CUSTOM wrk -t1 -c"$c" -d"$DURATION" --latency -s bench/chat.lua "$URL")
    local t1=0 rss1=0
    [ ${#PIDS[@]} -gt 0 ] && { t1=$(cpu_ticks "${PIDS[@]}"); rss1=$(rss_kb "${PIDS[@]}"); }
    local n rps p50 p99 errors
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errors=$(echo "$out" | awk '/Non-2xx/ {s += $NF} /Socket errors/ {gsub(",", ""); s += $4 + $6 + $8 + $10} END {print s + 0}')
    local cpu_us="-"
    [ ${#PIDS[@]} -gt 0 ] && cpu_us=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$mode" "$c" "$rps" "$p50" "$p99" "$cpu_us" \
        "$((rss0 / 1024))" "$((rss1 / 1024))" "$errors" >> "$results"
    printf '%-8s %-6s c=%-3s rps=%-10s p50=%-9s p99=%-9s cpu_us/req=%-7s rss_mb=%s->%s errors=%s\n' "$name" "$mode" "$c" \
        "$rps" "$p50" "$p99" "$cpu_us" "$((rss0 / 1024))" "$((rss1 / 1024))" "$errors" >&2
}

soak() {
    "start_$SOAK_TARGET"
    check_target "$SOAK_TARGET"
    local pid=${PIDS[0]} idle samples=()
    idle=$(rss_kb "$pid")
    echo "soak: $SOAK_TARGET idle RSS $((idle / 1024)) MB; ${SOAK_SECONDS}s at 32 connections" >&2
    wrk -t1 -c32 -d"${SOAK_SECONDS}s" -s bench/chat.lua "$URL" > "$work/soak.wrk" &
    local wrk_pid=$!
    for ((t = 10; t <= SOAK_SECONDS; t += 10)); do
        sleep 10
        samples+=("$(rss_kb "$pid")")
        echo "t=${t}s rss_kb=${samples[-1]}" >&2
    done
    wait "$wrk_pid"
    local ref=${samples[5]:-${samples[0]}} min=999999999 max=0
    for s in "${samples[@]}"; do ((s < min)) && min=$s; ((s > max)) && max=$s; done
    {
        echo "## Soak: $SOAK_TARGET, 32 connections, ${SOAK_SECONDS}s ($(date -u +%F))"
        echo
        echo "- idle RSS: $((idle / 1024)) MB; during the soak min $((min / 1024)) MB, max $((max / 1024)) MB"
        echo "- reference (after 60 s): $((ref / 1024)) MB; spread vs reference: $(awk -v a="$min" -v b="$max" -v r="$ref" 'BEGIN {printf "%+.1f%% / %+.1f%%", (a - r) * 100 / r, (b - r) * 100 / r}')"
        echo "- wrk: $(grep -E 'requests in|Non-2xx|Socket' "$work/soak.wrk" | tr '\n' ' ')"
        echo "- samples (kB, every 10 s): ${samples[*]}"
    } | tee -a bench/results/soak.md
}

mkdir -p bench/results
if [ "${TARGETS[0]}" = soak ]; then
    soak
    exit 0
fi

for name in "${TARGETS[@]}"; do
    "start_$name"
    check_target "$name"
    for mode in $MODES; do
        [ "$mode" = stream ] && [ "$STREAM_OK" = 0 ] && continue
        for c in $CONNS; do measure "$name" "$mode" "$c"; done
    done
    # Stop this target before the next one so they never compete for the two cores.
    if [ ${#PIDS[@]} -gt 0 ]; then
        kill "${PIDS[@]}" 2>/dev/null || true
        [ "$name" = portkey ] && pkill -f "start-server.js --port" 2>/dev/null || true
        sleep 0.5
    fi
    unset BENCH_KEY
done

{
    echo "## Run of $(date -u '+%F %H:%M UTC')"
    echo
    echo "Command: \`DURATION=$DURATION CONNS=\"$CONNS\" MODES=\"$MODES\" bench/run.sh ${TARGETS[*]}\`"
    echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'), nginx $(nginx -v 2>&1 | awk -F/ '{print $2}'), node $(node --version), @portkey-ai/gateway $(node -p 'require("./bench/node_modules/@portkey-ai/gateway/package.json").version' 2>/dev/null || echo '-')"
    echo "Load: wrk -t1 (one client thread) on the same 2 cores as the proxy and aigw-mock; nginx worker_processes 1, aigw workers 1; access log $ACCESS_LOG (to a file, in both)."
    echo
    echo "| target | mode | conns | RPS | p50 | p99 | proxy CPU µs/req | RSS MB before→after | errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s→%s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}' "$results"
    echo
    [ -s "$work/notes" ] && { echo; sed 's/^/- /' "$work/notes"; }
    echo
    echo "Ratios in this run (targets: aigw CPU/req ≤ 1.5 × nginx; aigw RPS ≥ 20 × Portkey):"
    echo
    awk -F'\t' 'function us(v) { return v ~ /ms$/ ? v * 1000 : v ~ /us$/ ? v + 0 : v * 1e6 }
        {k = $2 " c=" $3; cpu[$1, k] = $7; rps[$1, k] = $4; p50[$1, k] = us($5); keys[k] = 1}
        END {for (k in keys) {
            line = "- " k ":"
            if (cpu["aigw", k] != "" && cpu["nginx", k] != "") line = line sprintf(" aigw/nginx CPU = %.2f; p50 aigw − nginx = %+.0f µs;", cpu["aigw", k] / cpu["nginx", k], p50["aigw", k] - p50["nginx", k])
            if (cpu["aigw-curl", k] != "" && cpu["nginx", k] != "") line = line sprintf(" aigw-curl/nginx CPU = %.2f;", cpu["aigw-curl", k] / cpu["nginx", k])
            if (cpu["aigw-fallback", k] != "" && cpu["aigw", k] != "") line = line sprintf(" fallback tree/single target CPU = %.2f;", cpu["aigw-fallback", k] / cpu["aigw", k])
            if (cpu["aigw-keys", k] != "" && cpu["aigw", k] != "") line = line sprintf(" keys on/off CPU = %.2f; p50 keys on − off = %+.0f µs;", cpu["aigw-keys", k] / cpu["aigw", k], p50["aigw-keys", k] - p50["aigw", k])
            if (cpu["aigw-keys", k] != "" && cpu["nginx", k] != "") line = line sprintf(" aigw-keys/nginx CPU = %.2f;", cpu["aigw-keys", k] / cpu["nginx", k])
            if (cpu["aigw-obs", k] != "" && cpu["aigw-keys", k] != "") line = line sprintf(" observability on/off (both with keys) CPU = %.2f; p50 on − off = %+.0f µs;", cpu["aigw-obs", k] / cpu["aigw-keys", k], p50["aigw-obs", k] - p50["aigw-keys", k])
            if (cpu["aigw-obs", k] != "" && cpu["aigw", k] != "") line = line sprintf(" aigw-obs/aigw CPU = %.2f;", cpu["aigw-obs", k] / cpu["aigw", k])
            if (cpu["aigw-obs", k] != "" && cpu["nginx", k] != "") line = line sprintf(" aigw-obs/nginx CPU = %.2f;", cpu["aigw-obs", k] / cpu["nginx", k])
            if (cpu["aigw-cache", k] != "" && cpu["nginx", k] != "") line = line sprintf(" cache hit/nginx proxied CPU = %.2f; p50 hit − nginx = %+.0f µs;", cpu["aigw-cache", k] / cpu["nginx", k], p50["aigw-cache", k] - p50["nginx", k])
            if (cpu["aigw-cache", k] != "" && cpu["aigw", k] != "") line = line sprintf(" cache hit/aigw proxied CPU = %.2f;", cpu["aigw-cache", k] / cpu["aigw", k])
            if (rps["aigw", k] != "" && rps["portkey", k] != "") line = line sprintf(" aigw/Portkey RPS = %.1f", rps["aigw", k] / rps["portkey", k])
            print line }}' "$results" | sort
} | tee bench/results/latest.md
