#!/usr/bin/env bash
# `make run`: starts aigw-mock on 127.0.0.1:9090 and aigw on aigw.example.yaml (127.0.0.1:8080),
# prints a request to try, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cleanup() { kill "${mock_pid:-}" "${gw_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$BUILD/aigw-mock" --listen 127.0.0.1:9090 &
mock_pid=$!
"$BUILD/aigw" serve -c aigw.example.yaml &
gw_pid=$!
for _ in $(seq 50); do curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.1; done
cat <<'MSG'

aigw is running on http://127.0.0.1:8080 (aigw-mock behind it on :9090). Try:

  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"mock-model","messages":[{"role":"user","content":"Hello, gateway"}]}'

  curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"fast","stream":true,"messages":[{"role":"user","content":"stream please"}]}'

  # an Anthropic client, answered by a Gemini-format provider (translated both ways)
  curl -s http://127.0.0.1:8080/v1/messages -H 'Content-Type: application/json' \
    -H 'anthropic-version: 2023-06-01' \
    -d '{"model":"mock-gemini","max_tokens":100,"messages":[{"role":"user","content":"Hello"}]}'

With OPENAI_API_KEY set, "model":"gpt-4o-mini" goes to OpenAI. Ctrl-C stops both.
MSG
wait "$gw_pid"
