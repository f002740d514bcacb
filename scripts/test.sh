#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, plus the lint and type gates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/ruff check src tests scripts
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
