"""Build the route index: exactly ``intent-router build`` (same flags, same code).

python3 scripts/build_index.py --routes routes --index index [--encoder NAME_OR_FOLDER]
"""

from __future__ import annotations

import sys

from intent_router.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build", *sys.argv[1:]]))
