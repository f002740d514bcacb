"""The ``intent-router`` command: build, fit, eval, serve — thin over the modules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from intent_router import logs
from intent_router.config import Settings
from intent_router.embedding.choice import DEFAULT_ENCODER, ENCODERS
from intent_router.errors import IntentRouterError

if TYPE_CHECKING:
    from intent_router.routing.evaluation import Example
    from intent_router.routing.matcher import Matcher

log = logging.getLogger("intent_router")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(
        logging.INFO if not args.quiet else logging.WARNING,
        json_lines=args.command == "serve" and not args.plain_logs,
    )
    try:
        result: int = args.handler(args)
        return result
    except IntentRouterError as exc:
        print(f"intent-router: error: {exc}", file=sys.stderr)
        return 2


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    values: dict[str, object] = {"routes_dir": args.routes, "index_dir": args.index, **extra}
    if args.encoder:
        values["encoder"] = args.encoder
    return Settings(**values)  # type: ignore[arg-type]


def cmd_build(args: argparse.Namespace) -> int:
    from intent_router.build import build_index
    from intent_router.embedding.choice import load_encoder

    settings = _settings(args)
    encoder = load_encoder(settings.encoder)
    _, report = build_index(
        settings.routes_dir, settings.index_dir, encoder, progress=not args.quiet
    )
    print(
        f"built {report.folder}: {report.routes} routes, {report.utterances} utterances "
        f"({report.embedded} embedded, {report.reused} reused) in {report.seconds:.1f}s"
        + (f", {report.utterances_per_s:.0f} utterances/s" if report.embedded else "")
    )
    return 0


def _loaded(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from intent_router.embedding.choice import load_encoder
    from intent_router.routing.loader import load_routes
    from intent_router.service import prepare_index

    settings = _settings(args)
    encoder = load_encoder(settings.encoder)
    routes = load_routes(settings.routes_dir)
    index = prepare_index(settings, encoder, routes, build=False)
    return settings, encoder, routes, index


def cmd_fit(args: argparse.Namespace) -> int:
    from intent_router.embedding.index import Thresholds, save_thresholds
    from intent_router.routing import scoring
    from intent_router.routing.evaluation import load_dataset
    from intent_router.routing.matcher import Matcher

    _, encoder, routes, index = _loaded(args)
    examples = load_dataset(args.dataset, known_routes=routes.names)
    matcher = Matcher(routes, index)
    scores = matcher.scores(encoder.encode([e.text for e in examples], progress=not args.quiet))
    position = {name: i for i, name in enumerate(matcher.names)}
    gold = np.array([position[e.route] if e.route else -1 for e in examples])
    global_t, per_route = scoring.fit_thresholds(
        scores.max(axis=1),
        scores.argmax(axis=1),
        gold,
        n_routes=len(matcher.names),
        per_route=args.per_route,
    )
    fitted = (
        {} if per_route is None else dict(zip(matcher.names, map(float, per_route), strict=True))
    )
    thresholds = Thresholds(
        global_threshold=global_t,
        per_route=fitted,
        fitted_on=str(args.dataset),
        fitted_at=time.time(),
    )
    path = save_thresholds(index, thresholds)
    print(
        f"fitted global threshold {global_t:.4f}"
        + (f" and {len(thresholds.per_route)} per-route thresholds" if per_route else "")
        + f" on {len(examples)} examples; stored in {path}"
    )
    _print_fit_by_language(examples, scores, Matcher(routes, index))
    return 0


def _print_fit_by_language(
    examples: Sequence[Example], scores: np.ndarray, matcher: Matcher
) -> None:
    """With a ``lang`` field in the data: results per language at the stored thresholds."""
    from intent_router.routing.evaluation import evaluate_by_language, format_languages

    if not any(e.lang for e in examples):
        return
    best = scores.argmax(axis=1)
    predicted = [
        matcher.names[b] if scores[i, b] >= matcher.thresholds[b] else None
        for i, b in enumerate(best)
    ]
    print("per language, at the stored thresholds, on the same data:")
    print(format_languages(evaluate_by_language(examples, predicted)))


def cmd_eval(args: argparse.Namespace) -> int:
    from intent_router.routing.evaluation import (
        evaluate,
        evaluate_by_language,
        format_languages,
        format_report,
        load_dataset,
    )
    from intent_router.routing.matcher import Matcher

    _, encoder, routes, index = _loaded(args)
    examples = load_dataset(args.dataset, known_routes=routes.names)
    vectors = encoder.encode([e.text for e in examples], progress=not args.quiet)
    decisions = Matcher(routes, index).decide(vectors)
    predicted = [d.route for d in decisions]
    report = evaluate([e.route for e in examples], predicted)
    by_lang = evaluate_by_language(examples, predicted)
    if args.json:
        summary = report.summary()
        if by_lang:
            summary["per_language"] = {k: r.summary() for k, r in by_lang.items()}
        print(json.dumps(summary))
    else:
        print(format_report(report))
        if by_lang:
            print("\n" + format_languages(by_lang))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from intent_router.api.app import create_app
    from intent_router.embedding.choice import load_encoder
    from intent_router.routing.loader import load_routes
    from intent_router.service import prepare_index

    extra: dict[str, object] = {"build_on_start": args.build}
    if args.models is not None:
        extra["models_file"] = None if str(args.models) == "none" else args.models
    settings = _settings(args, **extra)
    encoder = load_encoder(settings.encoder)
    # Refuse a missing or stale index before binding the port, with the command to run.
    prepare_index(
        settings, encoder, load_routes(settings.routes_dir), build=settings.build_on_start
    )
    app = create_app(settings, encoder=encoder)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intent-router", description="Semantic router for LLM traffic."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument(
        "--plain-logs", action="store_true", help="human-readable logs (serve logs JSON lines)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, handler: object) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--routes", type=Path, default=Path("routes"), help="route files folder")
        p.add_argument("--index", type=Path, default=Path("index"), help="index folder")
        p.add_argument(
            "--encoder",
            help=f"{', '.join(ENCODERS)}, or a sentence-transformers model package or folder "
            f"(default: {DEFAULT_ENCODER}, or INTENT_ROUTER_ENCODER)",
        )
        p.set_defaults(handler=handler)
        return p

    command("build", "Embed the route utterances and write the index (incremental).", cmd_build)
    fit = command("fit", "Fit thresholds on labelled data; stored with the index.", cmd_fit)
    fit.add_argument("--dataset", type=Path, required=True, help='JSONL of {"text", "route"}')
    fit.add_argument("--per-route", action="store_true", help="also fit one threshold per route")
    ev = command("eval", "Report routing accuracy on labelled data.", cmd_eval)
    ev.add_argument("--dataset", type=Path, required=True, help='JSONL of {"text", "route"}')
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    serve = command("serve", "Serve the HTTP API.", cmd_serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--build", action="store_true", help="build the index if it is missing or stale"
    )
    serve.add_argument(
        "--models",
        type=Path,
        help="models file for dispatch (default models.yaml; 'none' serves /route only)",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
