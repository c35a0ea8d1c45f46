#!/usr/bin/env bash
# `make run`: starts aigw-mock on 127.0.0.1:9090 and aigw on aigw.example.yaml (127.0.0.1:8080),
# prints a request to try, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cleanup() { kill "${mock_pid:-}" "${gw_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
# A port someone already listens on: say which and stop, rather than start beside it.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for need in "9090 aigw-mock" "8080 aigw"; do
    set -- $need
    if port_busy "$1"; then
        echo "make run: 127.0.0.1:$1 (for $2) is already in use; stop what listens there and try again" >&2
        exit 1
    fi
done
"$BUILD/aigw-mock" --listen 127.0.0.1:9090 &
mock_pid=$!
"$BUILD/aigw" serve -c aigw.example.yaml &
gw_pid=$!
ready=
for _ in $(seq 50); do
    if curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$gw_pid" 2>/dev/null && kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "make run: aigw did not become ready on 127.0.0.1:8080 (see its messages above)" >&2
    exit 1
fi
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

  # a fallback: 2 requests per 10 s from mock-limited, then from mock-anthropic; see the headers
  curl -sD - -o /dev/null http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"resilient","messages":[{"role":"user","content":"Hello"}]}' | grep -i x-aigw

With OPENAI_API_KEY set, "model":"gpt-4o-mini" goes to OpenAI. Ctrl-C stops both.
MSG
wait "$gw_pid"
