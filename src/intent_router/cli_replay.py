"""``intent-router replay``: recorded decisions (or a labelled file) against candidate routes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from intent_router.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(index=None)  # the candidate's index: a scratch folder unless given
    parser.add_argument(
        "--log",
        type=Path,
        required=True,
        metavar="DECISIONS.jsonl",
        help="a decision log written with --log-prompts redacted|full, or a labelled "
        'JSONL file of {"text", "route"}',
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line (the summary)")
    parser.add_argument(
        "--max-changed",
        type=int,
        metavar="N",
        help="exit with status 1 when more than N decisions change; for CI",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="--log is a labelled eval file (detected when its rows have text and no "
        "request_id): report accuracy before and after",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="labelled file only: the routes to compare with (default: the server's routes, "
        "INTENT_ROUTER_ROUTES_DIR or routes/)",
    )


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from intent_router.cli import settings_from_args
    from intent_router.embedding.choice import load_encoder
    from intent_router.replay import Sources, is_labelled, replay

    server = Settings()  # the server's folders (INTENT_ROUTER_* or the defaults)
    settings = settings_from_args(args, index_dir=args.index or server.index_dir)
    labelled = args.labels or (args.log.is_file() and is_labelled(args.log))
    encoder = load_encoder(settings.encoder)
    with tempfile.TemporaryDirectory(prefix="intent-router-replay-") as scratch:
        sources = Sources(
            candidate=args.routes,
            index=args.index or Path(scratch) / "candidate",
            fitted_from=server.index_dir,
            baseline=args.baseline or server.routes_dir,
            baseline_index=Path(scratch) / "baseline",
        )
        report, notes = asyncio.run(replay(settings, encoder, args.log, sources, labelled=labelled))
    for note in notes:
        print(f"note: {note}")
    print(report.format())
    if args.json:
        print(json.dumps(report.to_dict()))
    if args.max_changed is not None and report.changed > args.max_changed:
        print(
            f"intent-router: {report.changed} decisions changed, more than --max-changed "
            f"{args.max_changed}",
            file=sys.stderr,
        )
        return 1
    return 0
