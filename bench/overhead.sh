#!/usr/bin/env bash
# bench/overhead.sh — what observability costs in CPU per request, measured the way the
# observability issue asks: the gateway's CPU time (every thread, user and kernel: the exporter's
# and the store's writes included) per request with metrics, traces at 100 % and the request log
# on, against the same gateway with them off, in the same run.
#
# One wall-clock run on a shared machine moves by tens of percent from one minute to the next,
# so this one runs the configurations many times, interleaved, and reports medians: ROUNDS
# rounds, each measuring every configuration once (in turn, after a warm-up), all of them
# started once and left idle while another is measured. Configurations:
#   off      metrics only (they are always on), access log on
#   traces   off + every request traced (sample_ratio 1) and exported to a local OTLP sink
#   keys     off + gateway keys (a key from the store, its limits counted, its spend flushed)
#   all      keys + traces + the request log: everything on (the request log needs the store)
# Ratios: traces ÷ off, all ÷ keys (what observability adds to a gateway with keys: the request
# log lives in their store and cannot run without it), and all ÷ off. Each ratio is also taken
# round by round (both sides measured within a minute of each other), its median and range
# printed.
#
#   bench/overhead.sh                 ROUNDS=9, DURATION=5s, WARMUP=1s, CONNS=32
# Output: a markdown table on stdout and in bench/results/overhead.md; rows per round in
# bench/results/overhead.tsv. Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-9}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-32}
command -v wrk >/dev/null || { echo "overhead: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x build/aigw ] && [ -x build/aigw-mock ] || make -s all
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
. bench/lib.sh
start_mock
HZ=$(getconf CLK_TCK)
# thread_ticks PID: the process's CPU ticks (user + kernel, its threads that ended included) as
# "=process N", then each thread's name and ticks, one line each (the threads are named:
# aigw-worker, aigw-traces, aigw-store, …)
thread_ticks() {
    local t
    printf '=process %s\n' "$(awk '{print $14 + $15}' "/proc/$1/stat")"
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
    done
}
sink_port=$(free_port)
node -e 'require("http").createServer((q,s)=>{q.resume();q.on("end",()=>s.end("{}"))}).listen(+process.argv[1],"127.0.0.1")' \
    "$sink_port" &
pids+=($!)

declare -A PID URL KEY
# start NAME EXTRA_YAML: one aigw with its own port, store and access log.
start() {
    local name=$1 port
    port=$(free_port)
    cat >"$work/$name.yaml" <<CONF
listen: 127.0.0.1:$port
workers: 1
access_log: $work/$name-access.log
providers:
  - {name: mock, base_url: 'http://127.0.0.1:$mock_port/v1', models: [mock-model]}
$2
CONF
    "${AIGW_BIN:-build/aigw}" serve -c "$work/$name.yaml" 2>"$work/$name.err" &
    pids+=($!)
    PID[$name]=$!
    URL[$name]="http://127.0.0.1:$port/v1/chat/completions"
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    KEY[$name]=bench-key
    if [[ "$2" == *auth:* ]]; then
        KEY[$name]=$(curl -s "http://127.0.0.1:$port/admin/keys" -H 'Authorization: Bearer bench-master-key-0123456789' \
            -d '{"key_alias":"bench","rpm_limit":1000000000,"tpm_limit":1000000000000,"max_budget":1000000}' |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')
    fi
    curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer ${KEY[$name]}" "${URL[$name]}" \
        -d '{"model":"mock-model","messages":[{"role":"user","content":"check"}]}' | grep -q '"mock reply to: check"' ||
        { echo "overhead: $name did not return the mock's reply" >&2; exit 1; }
}
tracing="tracing: {endpoint: 'http://127.0.0.1:$sink_port/v1/traces', sample_ratio: 1, batch_delay: 200ms}"
auth() { echo "auth: {master_key: bench-master-key-0123456789, store: $work/$1.db}"; }
start off ""
start traces "$tracing"
start keys "$(auth keys)
request_log: off"
start all "$(auth all)
$tracing
request_log: {queue: 100000}"
NAMES=(off traces keys all)

mkdir -p bench/results
tsv=bench/results/overhead.tsv
printf 'round\tconfig\trequests\tcpu_us_per_request\trps\tworker_us\ttraces_us\tstore_us\tother_us\n' >"$tsv"
# measure ROUND NAME: wrk against one gateway for DURATION (after a warm-up), and its CPU time
# over the requests it served, in all and by thread: the workers', the trace exporter's, the
# store's, and the rest (the access log's writer, …).
measure() {
    local round=$1 name=$2 t0 t1 out n rps us
    BENCH_KEY=${KEY[$name]} wrk -t1 -c"$CONNS" -d"$WARMUP" -s bench/chat.lua "${URL[$name]}" >/dev/null
    t0=$(thread_ticks "${PID[$name]}")
    out=$(BENCH_KEY=${KEY[$name]} wrk -t1 -c"$CONNS" -d"$DURATION" -s bench/chat.lua "${URL[$name]}")
    t1=$(thread_ticks "${PID[$name]}")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    # an error or a timed-out request would be CPU spent without a request counted
    if echo "$out" | grep -qE "Non-2xx|Socket errors"; then echo "overhead: $name: $(echo "$out" | grep -E 'Non-2xx|Socket')" >&2; exit 1; fi
    # after less before: the process's in all, and by thread name (a thread started in between
    # counts from 0); "other" is the rest of the process's, threads that ended included
    us=$(printf '%s\n' "$t0" "--" "$t1" | awk -v hz="$HZ" -v n="$n" '
        $0 == "--" { after = 1; next }
        { g = $1 == "=process" ? "all" : $1 == "aigw-worker" ? "worker" : $1 == "aigw-traces" ? "traces" : $1 == "aigw-store" ? "store" : ""
          if (g != "") d[g] += after ? $2 : -$2 }
        END { f = 1e6 / hz / n
              printf "%.2f\t%.2f\t%.2f\t%.2f\t%.2f", d["all"] * f, d["worker"] * f, d["traces"] * f, d["store"] * f,
                     (d["all"] - d["worker"] - d["traces"] - d["store"]) * f }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$n" "${us%%$'\t'*}" "$rps" "${us#*$'\t'}" >>"$tsv"
    us=${us%%$'\t'*}
    echo "round $round: $name $us µs/request ($rps requests/s)" >&2
}
# The order turns each round, so no configuration always follows the same one. (Measuring two
# at once, a wrk each, was tried to cancel the machine's drift: the one given less of the CPU
# batches more requests a wake-up and looked cheaper — traced requests cheaper than untraced.)
for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        measure "$round" "${NAMES[$(((i + round) % ${#NAMES[@]}))]}"
    done
done

{
    echo "## Observability's CPU per request ($(date -u '+%F %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null))"
    echo
    echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS bench/overhead.sh\` ($(nproc) cores, wrk -t1, aigw workers 1, load average before: $load_before)"
    echo
    python3 - "$tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["config"], {})[int(r["round"])] = float(r["cpu_us_per_request"])
def q(v, p):
    v = sorted(v); k = (len(v) - 1) * p; f = int(k)
    return v[f] + (v[min(f + 1, len(v) - 1)] - v[f]) * (k - f)
threads = {}
for r in rows:
    for t in ("worker", "traces", "store", "other"):
        threads.setdefault((r["config"], t), []).append(float(r[t + "_us"]))
print("| configuration | CPU µs / request, median | quartiles | min – max | by thread, medians: worker / exporter / store / other |")
print("|---|---|---|---|---|")
for name in ("off", "traces", "keys", "all"):
    v = list(by[name].values())
    parts = " / ".join(f"{statistics.median(threads[(name, t)]):.2f}" for t in ("worker", "traces", "store", "other"))
    print(f"| {name} | {statistics.median(v):.2f} | {q(v, .25):.2f} – {q(v, .75):.2f} | {min(v):.2f} – {max(v):.2f} | {parts} |")
print()
print("| ratio | of medians | round by round: median | quartiles | min – max |")
print("|---|---|---|---|---|")
for a, b in (("traces", "off"), ("all", "keys"), ("all", "off")):
    per = [by[a][k] / by[b][k] for k in by[a] if k in by[b]]
    print(f"| {a} ÷ {b} | {statistics.median(by[a].values()) / statistics.median(by[b].values()):.3f} | "
          f"{statistics.median(per):.3f} | {q(per, .25):.3f} – {q(per, .75):.3f} | {min(per):.3f} – {max(per):.3f} |")
PY
} | tee bench/results/overhead.md
