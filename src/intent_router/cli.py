"""The ``intent-router`` command: build, fit, eval, serve — thin over the modules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from intent_router import logs
from intent_router.config import Settings
from intent_router.errors import ConfigError, IntentRouterError

log = logging.getLogger("intent_router")
DEFAULT_PORT = 4000  # not vLLM's 8000 nor Ollama's 11434, which local upstreams use


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(
        logging.INFO if not args.quiet else logging.WARNING,
        json_lines=args.command == "serve" and not args.plain_logs,
    )
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader chatters at INFO
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
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:  # a flag or an INTENT_ROUTER_* variable: one clear line
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        where = f"INTENT_ROUTER_{name.upper()} / --{name.replace('_', '-')}"
        more = len(exc.errors()) - 1
        extra_txt = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"setting {name} ({where}): {first['msg']}{extra_txt}") from None


def cmd_build(args: argparse.Namespace) -> int:
    from intent_router.build import build_index
    from intent_router.embedding.encoder import Encoder

    settings = _settings(args)
    encoder = Encoder(settings.encoder)
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
    from intent_router.embedding.encoder import Encoder
    from intent_router.routing.loader import load_routes
    from intent_router.service import prepare_index

    settings = _settings(args)
    encoder = Encoder(settings.encoder)
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
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from intent_router.routing.evaluation import evaluate, format_report, load_dataset
    from intent_router.routing.matcher import Matcher

    _, encoder, routes, index = _loaded(args)
    examples = load_dataset(args.dataset, known_routes=routes.names)
    vectors = encoder.encode([e.text for e in examples], progress=not args.quiet)
    decisions = Matcher(routes, index).decide(vectors)
    report = evaluate([e.route for e in examples], [d.route for d in decisions])
    if args.json:
        print(json.dumps(report.summary()))
    else:
        print(format_report(report))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from intent_router.models import load_models
    from intent_router.routing.loader import load_routes

    extra: dict[str, object] = {"build_on_start": args.build}
    if args.log_prompts is not None:
        extra["log_prompts"] = args.log_prompts
    if args.models is not None:
        extra["models_file"] = None if str(args.models) == "none" else args.models
    flags = ("max_in_flight", "max_body_bytes", "decision_log", "decision_log_max_bytes",
             "decision_log_keep")  # fmt: skip
    for flag in flags:
        if getattr(args, flag) is not None:
            extra[flag] = getattr(args, flag)
    settings = _settings(args, **extra)
    # Refuse bad config files before loading anything: one line on stderr, no traceback.
    routes = load_routes(settings.routes_dir)
    models = load_models(settings.models_file) if settings.models_file is not None else None

    import uvicorn

    from intent_router.api.app import create_app
    from intent_router.embedding.encoder import Encoder
    from intent_router.service import prepare_index

    encoder = Encoder(settings.encoder)
    # Refuse a missing or stale index before binding the port, with the command to run.
    prepare_index(settings, encoder, routes, build=settings.build_on_start)
    if models is not None:  # after the index check, as the server's start-up does it
        models.check_chains({r.name: r.chain for r in routes.routes})
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
        p.add_argument("--encoder", help="model package or folder (default: all-MiniLM-L6-v2)")
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
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; vLLM's 8000 and Ollama's 11434 stay free)",
    )
    serve.add_argument(
        "--build", action="store_true", help="build the index if it is missing or stale"
    )
    serve.add_argument(
        "--models",
        type=Path,
        help="models file for dispatch (default models.yaml; 'none' serves /route only)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=int,
        help="requests served at once, then a short queue, then 503 (default 256; 0: no cap)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        help="refuse larger request bodies with 413 before reading them (default 4 MiB)",
    )
    serve.add_argument(
        "--log-prompts",
        choices=["off", "redacted", "full"],
        help="prompt and answer text in logs: off (default), redacted (personal data "
        "replaced by <EMAIL>, <PHONE> …) or full",
    )
    serve.add_argument(
        "--decision-log",
        type=Path,
        metavar="PATH",
        help="write one JSON row per request here (route, scores, cache, attempts, cost)",
    )
    serve.add_argument(
        "--decision-log-max-bytes",
        type=int,
        help="rotate the decision log past this size (default 100 MiB)",
    )
    serve.add_argument(
        "--decision-log-keep",
        type=int,
        help="rotated decision-log files kept: PATH.1 … PATH.N (default 5)",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
