#!/usr/bin/env bash
# bench/streams.sh — memory per concurrent stream: N clients (STREAMS, 10000) each read a slow
# stream through one aigw worker (aigw-mock sends WORDS events DELAY_MS apart: 60 × 400 ms), and
# aigw's RSS is sampled every 250 ms. Prints the idle RSS, the RSS once every stream has its
# head (the plateau: the largest sample while all N are open), VmHWM, and (plateau − idle) / N.
#
#   bench/streams.sh                         10,000 streams (or what the open-file limit lets),
#                                            access log on (to a file)
#   STREAMS=2000 AIGW_UPSTREAM=curl bench/streams.sh   another count; curl for every URL
#   AIGW_BIN=… bench/streams.sh              another build (an A/B)
#
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stream is two sockets in aigw: the open-file limit is raised as far as the hard limit
# lets (where that is below 2 × 10,000 + a margin, the default count is what fits).
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
limit=$((hard < 65536 ? hard : 65536))
ulimit -n "$limit"
fits=$(( (limit - 100) / 2 ))
STREAMS=${STREAMS:-$((fits < 10000 ? fits : 10000))}
((2 * STREAMS + 100 <= limit)) || { echo "streams: $STREAMS streams need $((2 * STREAMS + 100)) files; the limit is $limit" >&2; exit 1; }
WORDS=${WORDS:-60}
DELAY_MS=${DELAY_MS:-400}
[ -x build/aigw ] && [ -x build/aigw-mock ] || make -s all
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
[ -n "${KEEP:-}" ] && trap 'cp "$work"/aigw.err "$work"/client.out "$KEEP"/ 2>/dev/null; cleanup' EXIT
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

mock_port=$(free_port)
build/aigw-mock --listen "127.0.0.1:$mock_port" --workers 2 --record 0 >/dev/null &
pids+=($!)
port=$(free_port)
cat > "$work/aigw.yaml" <<CONF
listen: 127.0.0.1:$port
workers: 1
limits: {max_connections: $((STREAMS + 100))}
access_log: $work/access.log
providers:
  - {name: mock, base_url: 'http://127.0.0.1:$mock_port/v1', models: [mock-model]}
CONF
"${AIGW_BIN:-build/aigw}" serve -c "$work/aigw.yaml" 2>"$work/aigw.err" &
aigw=$!
sleep 0.3; kill -0 "$aigw" 2>/dev/null || { cat "$work/aigw.err" >&2; exit 1; }
pids+=($aigw)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$mock_port/v1/models" && break; sleep 0.1; done
idle=$(rss_kb "$aigw")

node bench/streams.mjs 127.0.0.1 "$port" "$STREAMS" "$WORDS" "$DELAY_MS" > "$work/client.out" 2>&1 &
client=$!
pids+=($client)
peak=0 plateau=0 t0=$(date +%s%N) all=""
while kill -0 "$client" 2>/dev/null; do
    r=$(rss_kb "$aigw")
    ((r > peak)) && peak=$r
    if grep -q "^started" "$work/client.out"; then
        [ -z "$all" ] && all=$(( ($(date +%s%N) - t0) / 1000000 ))
        ((r > plateau)) && plateau=$r
    fi
    sleep 0.25
done
wait "$client" || { echo "streams: the client failed:" >&2; cat "$work/client.out" >&2; }
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$aigw/status")
[ -n "$all" ] || { echo "streams: not every stream started:" >&2; cat "$work/client.out" >&2; exit 1; }
echo "streams: $STREAMS concurrent (${WORDS} events ${DELAY_MS} ms apart), all started after ${all} ms; upstream ${AIGW_UPSTREAM:-default}"
echo "aigw RSS: idle $idle kB, plateau $plateau kB, peak $peak kB (VmHWM $hwm kB)"
awk -v p="$plateau" -v i="$idle" -v n="$STREAMS" 'BEGIN {printf "per stream: %.1f KB ((plateau - idle) / streams)\n", (p - i) / n}'
cat "$work/client.out"
