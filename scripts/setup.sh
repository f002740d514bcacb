#!/usr/bin/env bash
# Set up a virtual environment in .venv with everything intent-router and its tests need.
# torch is installed first, pinned to the CPU build, so no multi-GB CUDA build is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[dev]"
# The Redis-backed cache tests start a real redis-server on a loopback port.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "note: redis-server is not installed; the Redis tests will be skipped" >&2
  fi
fi
# The console test drives Debian's chromium through Playwright (`playwright install` cannot
# download here); it is skipped when /usr/bin/chromium is absent.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; the console's browser test will be skipped" >&2
  fi
fi
