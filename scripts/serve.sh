#!/usr/bin/env bash
# Set up (if needed), build the index from routes/ (incrementally) and serve on 127.0.0.1:4000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/intent-router serve --build "$@"
