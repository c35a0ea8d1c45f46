#!/usr/bin/env bash
# Installs what aigw needs on Debian 12 (only what is missing; installing needs root).
#   scripts/deps.sh          to build and run it (`make run`): the compiler and the C libraries
#                            (ncurses for `aigw top`)
#   scripts/deps.sh --test   also what the tests need (`make test`): cmocka for the unit tests,
#                            Node and npm, PostgreSQL's server and redis-server (the tests start
#                            their own), the e2e test clients from the npm registry, and
#                            promptfoo for examples/promptfoo (its e2e test runs the example)
set -euo pipefail
cd "$(dirname "$0")/.."
test_deps=
case "${1:-}" in
    "") ;;
    --test | --with-e2e) test_deps=1 ;;
    *) echo "usage: scripts/deps.sh [--test]" >&2; exit 2 ;;
esac
need=(build-essential pkg-config libuv1-dev libcurl4-openssl-dev libhttp-parser-dev
      libjansson-dev libyaml-dev libpcre2-dev libsqlite3-dev libsodium-dev libpq-dev libhiredis-dev
      libncurses-dev curl)
if [ -n "$test_deps" ]; then
    # postgresql, prometheus and redis-server: servers the tests start in temporary directories
    # (tests/e2e/postgres.mjs, tests/e2e/metrics.test.mjs, the rate-limit tests on loopback)
    need+=(libcmocka-dev postgresql prometheus redis-server)
    # tmux and chromium: the terminal UI's and the dashboard's tests drive them (tests/e2e/ui*)
    need+=(tmux chromium)
    # node and npm may come from elsewhere than Debian's packages: a working binary is enough.
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
fi
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "deps: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "deps: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi
# npm ci empties node_modules first: a node_modules that is a link to another checkout's is that
# checkout's to install, never emptied from here. Installed when missing or older than the lock.
# examples/promptfoo: promptfoo builds better-sqlite3 from source (node-gyp, the compiler above
# and Node's headers) since its prebuilt binaries are downloaded from outside the registry; its
# .npmrc leaves promptfoo's optional peer packages (browsers, cloud SDKs) out.
if [ -n "$test_deps" ]; then
    for dir in tests/e2e examples/promptfoo; do
        [ -L "$dir/node_modules" ] && continue
        if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
            [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done
fi
