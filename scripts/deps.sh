#!/usr/bin/env bash
# Installs what aigw needs to build and test on Debian 12: C libraries from Debian's archive
# (only those missing; needs root) and the e2e test clients from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
need=(build-essential pkg-config libuv1-dev libcurl4-openssl-dev libhttp-parser-dev
      libjansson-dev libyaml-dev libpcre2-dev libcmocka-dev nodejs npm curl)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from elsewhere than Debian's packages: a working binary is enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
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
if [ "${1:-}" = "--with-e2e" ] || [ -f tests/e2e/package.json ]; then
    if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
        (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
