#!/usr/bin/env bash
# bench/cache_entry.sh — what the response cache's memory backend holds per exact entry: one
# aigw (cache on, mode simple, the memory backend) in front of aigw-mock is sent COUNT distinct
# short chat requests in each client format (OpenAI's /v1/chat/completions, Anthropic's
# /v1/messages), each stored once; aigw_cache_bytes and aigw_cache_entries from /metrics, minus
# what the empty cache counts (its bucket arrays), give the bytes per entry — everything
# counted against cache.max_bytes: the entry's bytes, its header and the allocator's word.
#
#   bench/cache_entry.sh               COUNT=200
#   WORDS=200 bench/cache_entry.sh     replies of 200 words (the mock's [[mock:words=200]]
#                                      directive in the prompt; its default is a short sentence)
#   AIGW_BIN=… bench/cache_entry.sh    another build (an A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-200}
WORDS=${WORDS:-}
AIGW_BIN=${AIGW_BIN:-build/aigw}
[ -x "$AIGW_BIN" ] && [ -x build/aigw-mock ] || make -s all
. bench/lib.sh
start_mock
port=$(free_port)
cat >"$work/aigw.yaml" <<CONF
listen: 127.0.0.1:$port
workers: 1
access_log: off
providers:
  - {name: oa, type: openai, base_url: 'http://127.0.0.1:$mock_port/v1', api_key: k, models: [mock-model]}
  - {name: an, type: anthropic, base_url: 'http://127.0.0.1:$mock_port', api_key: k, models: [claude-mock]}
cache: {mode: simple, max_bytes: 64MiB}
CONF
"$AIGW_BIN" serve -c "$work/aigw.yaml" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# fill FORMAT: COUNT distinct requests (each a miss, stored), one after another
fill() {
    node - "http://127.0.0.1:$port" "$COUNT" "$1" "$WORDS" <<'JS'
const [base, n, format, words] = [process.argv[2], Number(process.argv[3]), process.argv[4], process.argv[5]];
for (let i = 0; i < n; i++) {
  const anthropic = format === 'anthropic';
  const r = await fetch(`${base}/v1/${anthropic ? 'messages' : 'chat/completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(anthropic ? { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' } : { authorization: 'Bearer k' }) },
    body: JSON.stringify({ model: anthropic ? 'claude-mock' : 'mock-model', max_tokens: 64,
      messages: [{ role: 'user', content: `entry size probe number ${i}, a short question${words ? ` [[mock:words=${words}]]` : ''}` }] }),
  });
  if (r.status !== 200 || r.headers.get('x-aigw-cache') !== 'MISS') throw new Error(`${r.status} ${r.headers.get('x-aigw-cache')} ${await r.text()}`);
  await r.arrayBuffer();
}
JS
}
empty=$(metric aigw_cache_bytes)
echo "$("$AIGW_BIN" version 2>/dev/null | head -1) ($AIGW_BIN), $COUNT entries per client format${WORDS:+ of $WORDS words}, memory backend"
echo
echo "| client format | entries | bytes counted | bytes per entry |"
echo "|---|---|---|---|"
before_bytes=$empty
before_entries=0
for format in openai anthropic; do
    fill "$format"
    bytes=$(metric aigw_cache_bytes)
    entries=$(metric aigw_cache_entries)
    n=$((entries - before_entries))
    echo "| $format | $n | $((bytes - before_bytes)) | $(((bytes - before_bytes) / n)) |"
    before_bytes=$bytes
    before_entries=$entries
done
echo
echo "(the empty cache counts $empty bytes: its bucket arrays)"
