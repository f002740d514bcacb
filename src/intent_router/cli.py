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

from pydantic import ValidationError

from intent_router import logs
from intent_router.config import Settings
from intent_router.embedding.choice import DEFAULT_ENCODER, ENCODERS
from intent_router.errors import ConfigError, IntentRouterError

if TYPE_CHECKING:
    from intent_router.routing.evaluation import Example, Report
    from intent_router.routing.matcher import Decision

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


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
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
    from intent_router.embedding.choice import load_encoder

    settings = settings_from_args(args)
    encoder = load_encoder(settings.encoder)
    _, report = build_index(
        settings.routes_dir, settings.index_dir, encoder, progress=not args.quiet
    )
    extra = ""
    if report.none_routes or report.negatives:
        extra = (
            f"; {report.none_routes} none routes ({report.none_utterances} utterances), "
            f"{report.negatives} negatives"
        )
    print(
        f"built {report.folder}: {report.routes} routes, {report.utterances} utterances "
        f"({report.embedded} embedded, {report.reused} reused) in {report.seconds:.1f}s"
        + (f", {report.utterances_per_s:.0f} utterances/s" if report.embedded else "")
        + extra
    )
    for warning in report.warnings:
        print(f"warning: {warning}")
    overlaps = report.overlaps
    if overlaps is not None and overlaps.count:
        print(
            f"overlapping routes: {overlaps.count} utterances are nearer to another route "
            f"than to their own; pairs: "
            + ", ".join(f"{a} -> {b} ({n})" for a, b, n in overlaps.pairs[:10])
        )
        for overlap in overlaps.top:
            print(f"  {overlap}")
    return 0


def _loaded(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from intent_router.embedding.choice import load_encoder
    from intent_router.routing.loader import load_routes
    from intent_router.service import prepare_index

    settings = settings_from_args(args)
    encoder = load_encoder(settings.encoder)
    routes = load_routes(settings.routes_dir)
    index = prepare_index(settings, encoder, routes, build=False)
    return settings, encoder, routes, index


def cmd_fit(args: argparse.Namespace) -> int:
    from intent_router.embedding.index import save_thresholds
    from intent_router.routing.evaluation import format_report, load_dataset
    from intent_router.routing.fitting import as_thresholds, embed_for_fit, fit_blocks, gold_routes
    from intent_router.routing.matcher import Matcher
    from intent_router.routing.thresholds import Objective

    objective = Objective.parse(args.objective)
    _, encoder, routes, index = _loaded(args)
    examples = load_dataset(args.dataset, known_routes=routes.names)
    embedded = embed_for_fit(encoder, examples, progress=not args.quiet)
    matcher = Matcher(routes, index)
    fits = fit_blocks(
        matcher,
        embedded,
        gold_routes(matcher, examples),
        objective=objective,
        per_route=args.per_route,
    )
    thresholds = as_thresholds(
        fits,
        encoder.blocks,
        fitted_on=str(args.dataset),
        fitted_at=time.time(),
        objective=str(objective),
    )
    path = save_thresholds(index, thresholds)
    for position, fit in enumerate(fits):
        block = "" if len(encoder.blocks) == 1 else f" for the {fit.encoder} block"
        print(
            f"fitted global threshold {fit.global_threshold:.4f}{block} under objective "
            f"{objective}"
            + (f" and {len(fit.per_route)} per-route thresholds" if fit.per_route else "")
            + f" on {fit.rows} examples"
            + (f"; stored in {path}" if position == len(fits) - 1 else "")
        )
    single = len(encoder.blocks) == 1
    vectors = embedded[0].vectors if single else encoder.encode([e.text for e in examples])
    decisions = Matcher(routes, index).decide(vectors)
    if not args.quiet or args.report:
        print(f"on the fit set at this threshold:\n{format_report(_report(examples, decisions))}")
    _print_fit_by_language(examples, decisions)
    return 0


def _report(examples: Sequence[Example], decisions: Sequence[Decision]) -> Report:
    from intent_router.routing.evaluation import count_refusals, evaluate

    gold = [e.route for e in examples]
    predicted = [d.route for d in decisions]
    repelled_top = [
        d.candidates[0].route if d.candidates and d.candidates[0].route in d.repelled else None
        for d in decisions
    ]
    refusals = count_refusals(gold, predicted, [d.reason for d in decisions], repelled_top)
    return evaluate(gold, predicted, refusals)


def _print_fit_by_language(examples: Sequence[Example], decisions: Sequence[Decision]) -> None:
    """With a ``lang`` field in the data: results per language at the stored thresholds."""
    from intent_router.routing.evaluation import evaluate_by_language, format_languages

    if not any(e.lang for e in examples):
        return
    predicted = [d.route for d in decisions]
    print("per language, at the stored thresholds, on the same data:")
    print(format_languages(evaluate_by_language(examples, predicted)))


def cmd_eval(args: argparse.Namespace) -> int:
    from intent_router.routing.evaluation import (
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
    report = _report(examples, decisions)
    by_lang = evaluate_by_language(examples, [d.route for d in decisions])
    if args.json:
        summary = report.summary()
        if by_lang:
            summary["per_language"] = {k: r.summary() for k, r in by_lang.items()}
        print(json.dumps(summary))
    else:
        print(format_report(report))
        if by_lang:
            print("\n" + format_languages(by_lang))
    if args.min_accuracy is not None and report.overall_accuracy < args.min_accuracy:
        print(
            f"intent-router: overall accuracy {report.overall_accuracy:.4f} is below "
            f"--min-accuracy {args.min_accuracy:g}",
            file=sys.stderr,
        )
        return 1
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from intent_router.models import load_models
    from intent_router.routing.loader import load_routes

    extra: dict[str, object] = {"build_on_start": args.build}
    if args.log_prompts is not None:
        extra["log_prompts"] = args.log_prompts
    if args.models is not None:
        extra["models_file"] = None if str(args.models) == "none" else args.models
    flags = ("max_in_flight", "max_body_bytes", "decision_log", "decision_log_max_bytes",
             "decision_log_keep", "otel", "keys_file", "keys_redis_url")  # fmt: skip
    for flag in flags:
        if getattr(args, flag) is not None:
            extra[flag] = getattr(args, flag)
    settings = settings_from_args(args, **extra)
    if settings.otel:
        from intent_router.observability.tracing import require_otel

        require_otel()  # a missing [otel] extra is named before anything loads
    # Refuse bad config files before loading the encoder: one line on stderr, no traceback.
    load_routes(settings.routes_dir)
    if settings.models_file is not None:
        load_models(settings.models_file)

    import uvicorn

    from intent_router.api.access import open_warning
    from intent_router.api.app import create_app
    from intent_router.configuration import load_configuration
    from intent_router.embedding.choice import load_encoder

    encoder = load_encoder(settings.encoder)
    # Refuse a missing or stale index before binding the port, with the command to run; the
    # app starts on this configuration (the lifespan does not load it again).
    loaded = load_configuration(settings, encoder, build=settings.build_on_start)
    app = create_app(settings, encoder=encoder, reload_signal=True, loaded=loaded)
    open_warning(args.host, settings)
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
    fit.add_argument(
        "--per-route",
        action="store_true",
        help="also fit one threshold per route (macro-f1 only)",
    )
    fit.add_argument(
        "--objective",
        default="macro-f1",
        help="what the threshold maximises: macro-f1 (default; routes plus 'none' as one "
        "more class), oos-recall:R (best in-scope accuracy refusing at least R of the "
        "out-of-scope rows), precision:P (most routed right with at least P of routed "
        "requests on their right route)",
    )
    fit.add_argument(
        "--report",
        action="store_true",
        help="print per-route precision/recall on the fit set even with -q",
    )
    ev = command("eval", "Report routing accuracy on labelled data.", cmd_eval)
    ev.add_argument("--dataset", type=Path, required=True, help='JSONL of {"text", "route"}')
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument(
        "--min-accuracy",
        type=_fraction,
        metavar="X",
        help="exit with status 1 when the overall accuracy (routes and 'none' alike, a "
        "fraction 0-1) is below X; for gating route changes in CI",
    )
    from intent_router.cli_keys import add_parser as add_keys
    from intent_router.cli_replay import add_arguments as add_replay
    from intent_router.cli_replay import cmd_replay

    add_replay(command(
        "replay",
        "Re-route recorded requests against candidate routes (--routes) and report what changes.",
        cmd_replay,
    ))  # fmt: skip

    add_keys(sub)
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
    keys = serve.add_mutually_exclusive_group()
    keys.add_argument(
        "--keys",
        dest="keys_file",
        type=Path,
        metavar="FILE",
        help="API keys (intent-router keys create): every endpoint needs one but /healthz, "
        "/readyz and the console page",
    )
    keys.add_argument(
        "--keys-redis",
        dest="keys_redis_url",
        metavar="URL",
        help="API keys and rate limits in this Redis, shared by replicas (instead of --keys)",
    )
    serve.add_argument(
        "--log-prompts",
        choices=["off", "redacted", "full"],
        help="prompt and answer text in logs: off (default), redacted (personal data "
        "replaced by <EMAIL>, <PHONE> …) or full",
    )
    serve.add_argument(
        "--otel",
        action="store_true",
        default=None,
        help="export OpenTelemetry traces over OTLP/HTTP (needs the [otel] extra; endpoint "
        "and service name from OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME)",
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
