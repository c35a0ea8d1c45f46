#!/usr/bin/env bash
# Runs the end-to-end tests against the binaries in BUILD_DIR (build or build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -d tests/e2e/node_modules/openai ] && [ -d tests/e2e/node_modules/@anthropic-ai/sdk ] || (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
# promptfoo.test.mjs runs examples/promptfoo with the promptfoo pinned there (scripts/deps.sh --test)
[ -e examples/promptfoo/node_modules/.bin/promptfoo ] || (cd examples/promptfoo && npm ci --no-audit --no-fund --loglevel=error)
export AIGW_BIN="$PWD/$build/aigw" AIGW_MOCK_BIN="$PWD/$build/aigw-mock" AIGW_TEST_STAGES_BIN="$PWD/$build/aigw-test-stages"
# Leak checks at exit stay on; ASan's own exit code makes a leaking process fail its test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec node --test --test-concurrency=1 --test-timeout=120000 tests/e2e/*.test.mjs
