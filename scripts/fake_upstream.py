"""Run the fake LLM upstream by hand: the ``intent-router-fake-upstream`` command.

    python3 scripts/fake_upstream.py --port 9100 --latency-ms 40 --p503 0.3 --p429 0.1

Flags: ``--help`` (see :mod:`intent_router.testing.cli`).
"""

from __future__ import annotations

from intent_router.testing.cli import main

if __name__ == "__main__":
    main()
