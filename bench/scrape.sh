#!/usr/bin/env bash
# bench/scrape.sh — how long GET /metrics takes: one aigw worker, a provider serving MODELS
# models, one request per model (so one label set each: its aigw_requests_total, tokens and four
# histograms, about 86 Prometheus series), then SCRAPES timed scrapes with curl. Prints the
# number of series (sample lines), the body's size, and the median and p95 time. Then the same
# scrapes again, back to back, while another connection times GET /healthz on the same (only)
# worker: a scrape rendered on the worker's loop would hold each of them up for its whole time.
#   MODELS=12 bench/scrape.sh      about 1,000 series
#   MODELS=1000 bench/scrape.sh    about 86,000
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-12}
SCRAPES=${SCRAPES:-50}
[ -x build/aigw ] && [ -x build/aigw-mock ] || make -s all
. bench/lib.sh
start_mock
port=$(free_port)
models=$(seq 0 $((MODELS - 1)) | sed 's/^/m/' | paste -sd, -)
cat > "$work/aigw.yaml" <<CONF
listen: 127.0.0.1:$port
workers: 1
access_log: off
providers:
  - {name: mock, base_url: 'http://127.0.0.1:$mock_port/v1', models: [$models]}
CONF
build/aigw serve -c "$work/aigw.yaml" 2>"$work/aigw.err" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
node -e '
const http = require("http");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const [port, n] = [process.argv[1], +process.argv[2]];
const one = (i) => new Promise((ok, fail) => {
  const body = JSON.stringify({ model: "m" + i, messages: [{ role: "user", content: "hi" }] });
  const req = http.request({ host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", agent,
    headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
    (res) => { res.resume(); res.on("end", () => res.statusCode === 200 ? ok() : fail(new Error(String(res.statusCode)))); });
  req.on("error", fail);
  req.end(body);
});
(async () => { for (let i = 0; i < n; i++) await one(i); agent.destroy(); })().catch((e) => { console.error(e); process.exit(1); });
' "$port" "$MODELS"
curl -s "http://127.0.0.1:$port/metrics" > "$work/metrics.txt"
series=$(grep -c '^aigw_requests_total{' "$work/metrics.txt")
bytes=$(wc -c < "$work/metrics.txt")
for _ in $(seq "$SCRAPES"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics"
done | sort -n > "$work/times"
median=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$work/times")
p95=$(awk '{a[NR]=$1} END {i=int(NR*0.95+0.999); if (i>NR) i=NR; print a[i]}' "$work/times")
( for _ in $(seq "$SCRAPES"); do curl -s -o /dev/null "http://127.0.0.1:$port/metrics"; done ) &
scraping=$!
for _ in $(seq 200); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/healthz"
    kill -0 "$scraping" 2>/dev/null || break
done | sort -n > "$work/health"
wait "$scraping"
h_median=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$work/health")
h_max=$(tail -1 "$work/health")
echo "aigw $(git rev-parse --short HEAD 2>/dev/null): $(grep -vc '^#' "$work/metrics.txt") series (sample lines; $series request label sets), $bytes bytes"
echo "GET /metrics over $SCRAPES scrapes (curl time_total, loopback): median ${median}s, p95 ${p95}s"
echo "GET /healthz during back-to-back scrapes ($(wc -l < "$work/health") requests): median ${h_median}s, max ${h_max}s"
