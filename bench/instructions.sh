#!/usr/bin/env bash
# bench/instructions.sh — instructions per request (valgrind's callgrind), for costs too small
# for wall-clock CPU to show on a shared machine: callgrind counts the same for the same binary
# and input whatever else runs. Compares aigw with one target against aigw with a 3-target
# fallback tree with retries configured (the first target answers), both against aigw-mock;
# and (CONFIGS="… portkey") a Portkey config sent in every request's x-portkey-config header.
#
#   bench/instructions.sh            prints a table; DURATION (6s) of wrk -c1 per config
#   CONFIGS=single AIGW_BIN=… bench/instructions.sh   one config, another build (an A/B)
#
# Per request = (total − the same run's start-up and one request) / (requests − 1), where the
# start-up is measured by a run of one request. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-6s}
command -v valgrind >/dev/null || { echo "instructions: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "instructions: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x build/aigw ] && [ -x build/aigw-mock ] || make -s all
. bench/lib.sh
start_mock
port=$(free_port)
base="listen: 127.0.0.1:$port
workers: 1
access_log: off
providers:
  - {name: mock, base_url: 'http://127.0.0.1:$mock_port/v1', models: [mock-model]}"
echo "$base" > "$work/single.yaml"
cat > "$work/fallback.yaml" <<CONF
$base
  - {name: backup1, base_url: 'http://127.0.0.1:$mock_port/v1', models: [b1]}
  - {name: backup2, base_url: 'http://127.0.0.1:$mock_port/v1', models: [b2]}
routes:
  - name: mock-model
    strategy: {mode: fallback, on_status_codes: [429, 500, 502, 503, 504]}
    retry: {attempts: 3, base_delay: 100ms}
    targets:
      - {provider: mock, model: mock-model}
      - {provider: backup1, model: mock-model}
      - {provider: backup2, model: mock-model}
CONF

cat > "$work/portkey.yaml" <<CONF
$base
  - {name: backup1, base_url: 'http://127.0.0.1:$mock_port/v1', models: [b1]}
CONF
PORTKEY_CONFIG='{"strategy":{"mode":"fallback","on_status_codes":[429,500,502,503]},"retry":{"attempts":2},"targets":[{"provider":"mock","override_params":{"model":"mock-model"}},{"provider":"backup1","override_params":{"model":"mock-model"}}]}'

# run CONFIG SECONDS → "instructions requests"
run() {
    local out="$work/cg.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "${AIGW_BIN:-build/aigw}" serve -c "$work/$1.yaml" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    local n=1
    if [ "$2" = 0 ]; then
        curl -s -o /dev/null "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
            -d '{"model":"mock-model","messages":[{"role":"user","content":"x"}]}'
    else
        local header=""
        [ "$1" = portkey ] && header=$PORTKEY_CONFIG
        n=$(BENCH_CONFIG=$header wrk -t1 -c1 -d"$2" -s bench/chat.lua "http://127.0.0.1:$port/v1/chat/completions" |
            awk '/requests in/ {print $1}')
    fi
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$(awk '/^summary:/ {print $2}' "$out") $n"
}

echo "| aigw config | requests | instructions / request |"
echo "|---|---|---|"
declare -A per
for cfg in ${CONFIGS:-single fallback}; do
    read -r base_ir _ < <(run "$cfg" 0)
    read -r total n < <(run "$cfg" "$DURATION")
    per[$cfg]=$(( (total - base_ir) / (n - 1) ))
    echo "| $cfg | $n | ${per[$cfg]} |"
done
if [ -n "${per[fallback]:-}" ] && [ -n "${per[single]:-}" ]; then
    awk -v a="${per[fallback]}" -v b="${per[single]}" \
        'BEGIN {printf "\nfallback tree / single target: %.3f (%+d instructions per request)\n", a / b, a - b}'
fi
