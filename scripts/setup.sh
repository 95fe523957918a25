#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh machine: Go modules,
# the Node packages (npm ci from the committed lock files) and Debian's
# Chromium for the browser tests. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ "${SETUP_BENCH:-}" = 1 ]; then
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
fi
if [ "${SETUP_REDIS:-1}" = 1 ]; then
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install with apt-get: ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: apt-get install ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

for tool in go node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: $tool is required" >&2; exit 1; }
done

go mod download

# better-sqlite3 compiles from source here (no prebuilt download): point
# node-gyp at the local Node headers instead of downloading them.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

# The Node parts the tests run (the Better Auth server, the demo) get npm ci
# when node_modules is missing or older than the lock. testdata/hashkey and
# testdata/parity only regenerate committed golden files (npm run generate).
for dir in testdata/betterauth examples/demo; do
  lock="$dir/package-lock.json"
  if [ ! -d "$dir/node_modules" ] || [ "$lock" -nt "$dir/node_modules" ]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$dir/node_modules"
  fi
done
