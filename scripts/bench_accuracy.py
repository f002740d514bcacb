"""Routing accuracy on CLINC150 and on the shipped LLM routes, through the project's own code.

CLINC150 (``--data``, see the README beside it): one route per intent from ``train``
(100 utterances each), written as route YAML files into a temporary folder; a cold build
into a fresh temporary index with :func:`intent_router.build.build_index` (the code of
``intent-router build``); thresholds fitted on ``val`` + ``oos_val`` with
``intent-router fit``; the figures are ``intent-router eval --json`` on ``test`` +
``oos_test`` only. For reference (not in the JSON) the same evaluation at the default
threshold, before fitting. Then one route gets 3 more utterances and the index is rebuilt:
only those 3 are embedded.

Shipped routes (``--routes``, default ``routes/``) on ``--llm-data`` (default
``tests/data/llm_requests.jsonl``) at the default threshold: ``intent-router eval --json``.
``--routes-eval`` runs only this part (a few seconds of embedding).

    python3 scripts/bench_accuracy.py                # everything (~15 min on 2 busy cores)
    python3 scripts/bench_accuracy.py --routes-eval  # shipped routes only
    python3 scripts/bench_accuracy.py --intents 10   # a quick CLINC run on 10 intents

The last line printed is one JSON object: in_scope_accuracy, oos_recall, overall_accuracy,
macro_f1, build_utterances_per_s, fit_threshold, rebuild_embedded, rebuild_reused,
llm_routes_in_scope_accuracy, llm_routes_oos_recall (only the last two with --routes-eval).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from intent_router import cli
from intent_router.build import BuildReport, build_index
from intent_router.embedding.choice import load_encoder
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import load_index
from intent_router.routing.loader import load_routes

REPO = Path(__file__).resolve().parents[1]
CLINC = REPO / "../shared/data/clinc150/data_full.json"
LLM_DATA = REPO / "tests/data/llm_requests.jsonl"
LLM_ROUTES = REPO / "routes"
MULTILINGUAL_DATA = REPO / "scripts/data/multilingual.jsonl"
EXTRA_UTTERANCES = [
    "could you tell me about this please",
    "i need some help with this one",
    "what can you do about this for me",
]


def main() -> int:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    encoder = load_encoder(args.encoder)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        work = Path(tmp)
        if args.encoders:
            figures.update(compare_encoders(args, work))
        elif not args.routes_eval:
            figures.update(clinc(args, encoder, work))
        if not args.encoders:
            figures.update(shipped_routes(args, encoder, work))
    print(json.dumps(figures))
    return 0


def clinc(args: argparse.Namespace, encoder: Encoder, work: Path) -> dict[str, Any]:
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    intents = sorted({intent for _, intent in data["train"]})
    if args.intents:
        intents = intents[: args.intents]
    keep = set(intents)
    routes_dir, index_dir = work / "clinc-routes", work / "clinc-index"
    routes_dir.mkdir()
    for intent in intents:
        utterances = [text for text, label in data["train"] if label == intent]
        _write_route(routes_dir / f"{intent}.yaml", intent, utterances)
    val = _write_dataset(work / "val.jsonl", data["val"] + data["oos_val"], keep)
    test = _write_dataset(work / "test.jsonl", data["test"] + data["oos_test"], keep)
    common = ["--routes", str(routes_dir), "--index", str(index_dir)]
    if args.encoder:
        common += ["--encoder", args.encoder]

    print(f"== CLINC150: {len(intents)} routes from train, cold build into {index_dir}")
    _, report = build_index(routes_dir, index_dir, encoder)
    _print_build(report)

    print("\n== reference: test + oos_test at the default threshold (not fitted)")
    default = _cli_eval_json(common, test)
    print(json.dumps(default))

    print(f"\n== fit thresholds on val + oos_val ({val})")
    _cli_fit(common, val, encoder, routes_dir, index_dir)
    routes = load_routes(routes_dir)
    fitted = load_index(index_dir, routes_fingerprint=routes.fingerprint, encoder_id=encoder.id)
    threshold = fitted.thresholds.global_threshold
    print(f"fitted global threshold: {threshold}")

    print("\n== test + oos_test at the fitted threshold: intent-router eval --json")
    result = _cli_eval_json(common, test)
    print(json.dumps(result))

    changed = intents[0]
    print(f"\n== rebuild after adding {len(EXTRA_UTTERANCES)} utterances to route '{changed}'")
    path = routes_dir / f"{changed}.yaml"
    route = yaml.safe_load(path.read_text(encoding="utf-8"))
    route["utterances"] += EXTRA_UTTERANCES
    path.write_text(yaml.safe_dump(route, sort_keys=False), encoding="utf-8")
    _, rebuild = build_index(routes_dir, index_dir, encoder)
    _print_build(rebuild)
    return {
        "in_scope_accuracy": result["in_scope_accuracy"],
        "oos_recall": result["oos_recall"],
        "overall_accuracy": result["overall_accuracy"],
        "macro_f1": result["macro_f1"],
        "build_utterances_per_s": round(report.utterances_per_s, 1),
        "fit_threshold": None if threshold is None else round(threshold, 4),
        "rebuild_embedded": rebuild.embedded,
        "rebuild_reused": rebuild.reused,
    }


def shipped_routes(args: argparse.Namespace, encoder: Encoder, work: Path) -> dict[str, Any]:
    index_dir = work / "llm-index"
    print(f"\n== shipped routes {args.routes} on {args.llm_data}, default threshold")
    _, report = build_index(Path(args.routes), index_dir, encoder)
    _print_build(report)
    common = ["--routes", str(args.routes), "--index", str(index_dir)]
    if args.encoder:
        common += ["--encoder", args.encoder]
    text = _run_cli(["eval", *common, "--dataset", str(args.llm_data)])
    print(text)
    summary = _cli_eval_json(common, Path(args.llm_data))
    return {
        "llm_routes_in_scope_accuracy": summary["in_scope_accuracy"],
        "llm_routes_oos_recall": summary["oos_recall"],
    }


def compare_encoders(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each encoder of ``--encoders``: the shipped routes at its default threshold on the
    LLM requests (English) and on the multilingual set (all rows and its held-out ``test``
    half), then CLINC150 (fitted threshold) unless ``--routes-eval``."""
    figures: dict[str, Any] = {}
    for name in [n.strip() for n in args.encoders.split(",") if n.strip()]:
        print(f"\n==== encoder {name}")
        encoder = load_encoder(name)
        folder = work / name
        folder.mkdir()
        figures.update(_shipped_by_language(args, name, encoder, folder))
        if not args.routes_eval:
            one = argparse.Namespace(**{**vars(args), "encoder": name})
            clinc_figures = clinc(one, encoder, folder)
            for key in ("in_scope_accuracy", "oos_recall", "fit_threshold"):
                figures[f"{name}_clinc_{key}"] = clinc_figures[key]
    return figures


def _shipped_by_language(
    args: argparse.Namespace, name: str, encoder: Encoder, folder: Path
) -> dict[str, Any]:
    from intent_router.routing.evaluation import evaluate, load_dataset
    from intent_router.routing.matcher import Matcher

    routes = load_routes(Path(args.routes))
    index, report = build_index(routes, folder / "llm-index", encoder)
    _print_build(report)
    matcher = Matcher(routes, index)
    figures: dict[str, Any] = {}
    multi = Path(args.multilingual_data)
    for tag, data, keep in (
        ("llm", Path(args.llm_data), lambda row: True),
        ("non_english", multi, lambda row: row.lang != "en"),
        ("non_english_test", multi, lambda row: _split(multi, row) == "test"),
    ):
        rows = [e for e in load_dataset(data, known_routes=routes.names) if keep(e)]
        decisions = matcher.decide(encoder.encode([e.text for e in rows]))
        result = evaluate([e.route for e in rows], [d.route for d in decisions]).summary()
        print(f"{name} {tag}: {json.dumps(result)}")
        figures[f"{name}_{tag}_in_scope_accuracy"] = result["in_scope_accuracy"]
        figures[f"{name}_{tag}_oos_recall"] = result["oos_recall"]
    return figures


_SPLITS: dict[str, str] = {}


def _split(path: Path, example: Any) -> str:
    """The ``split`` field of a multilingual row (load_dataset keeps only text/route/lang)."""
    if not _SPLITS:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                _SPLITS[row["text"]] = row.get("split", "dev")
    return _SPLITS.get(example.text, "dev")


def _cli_eval_json(common: list[str], dataset: Path) -> dict[str, Any]:
    out = _run_cli(["eval", *common, "--dataset", str(dataset), "--json"])
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _cli_fit(
    common: list[str], dataset: Path, encoder: Encoder, routes_dir: Path, index_dir: Path
) -> None:
    """``intent-router fit``; if that command itself crashes, the same steps it takes."""
    try:
        print(_run_cli(["fit", *common, "--dataset", str(dataset)]).strip())
    except TypeError as exc:
        print(f"!! `intent-router fit` crashed ({exc}); fitting with the functions it calls")
        _fit_like_cli(routes_dir, index_dir, dataset, encoder)


def _fit_like_cli(routes_dir: Path, index_dir: Path, dataset: Path, encoder: Encoder) -> None:
    """What ``cli.cmd_fit`` does, with ``scoring.fit_thresholds`` called by its signature."""
    import numpy as np

    from intent_router.embedding.index import Thresholds, save_thresholds
    from intent_router.routing import scoring
    from intent_router.routing.evaluation import load_dataset
    from intent_router.routing.matcher import Matcher

    routes = load_routes(routes_dir)
    index = load_index(index_dir, routes_fingerprint=routes.fingerprint, encoder_id=encoder.id)
    examples = load_dataset(dataset, known_routes=routes.names)
    matcher = Matcher(routes, index)
    decisions = matcher.decide(encoder.encode([e.text for e in examples]))
    position = {name: i for i, name in enumerate(matcher.names)}
    best = [d.candidates[0] for d in decisions]  # top route whatever the threshold
    global_t, _ = scoring.fit_thresholds(
        [c.score for c in best],
        [position[c.route] for c in best],
        np.array([position[e.route] if e.route else -1 for e in examples]),
        n_routes=len(matcher.names),
    )
    thresholds = Thresholds(
        global_threshold=global_t, fitted_on=str(dataset), fitted_at=time.time()
    )
    path = save_thresholds(index, thresholds)
    print(f"fitted global threshold {global_t:.4f} on {len(examples)} examples; stored in {path}")


def _run_cli(argv: list[str]) -> str:
    """Run ``intent-router -q ARGV`` in-process; return its stdout; fail on a non-zero exit."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["-q", *argv])
    if code != 0:
        raise SystemExit(f"intent-router {' '.join(argv)} exited with {code}")
    return out.getvalue()


def _write_route(path: Path, name: str, utterances: list[str]) -> None:
    route = {"name": name, "description": f"CLINC150 intent {name}", "utterances": utterances}
    path.write_text(yaml.safe_dump(route, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _write_dataset(path: Path, rows: list[list[str]], intents: set[str]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for text, intent in rows:
            if intent == "oos" or intent in intents:
                route = None if intent == "oos" else intent
                fh.write(json.dumps({"text": text, "route": route}) + "\n")
    return path


def _print_build(report: BuildReport) -> None:
    print(
        f"built {report.routes} routes, {report.utterances} utterances: {report.embedded} "
        f"embedded in {report.embed_seconds:.1f}s ({report.utterances_per_s:.1f}/s), "
        f"{report.reused} reused; total {report.seconds:.1f}s"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=CLINC, help="CLINC150 data_full.json")
    parser.add_argument("--routes", type=Path, default=LLM_ROUTES, help="shipped routes folder")
    parser.add_argument("--llm-data", type=Path, default=LLM_DATA, help="LLM request JSONL")
    parser.add_argument("--encoder", default="minilm", help="encoder name (default: minilm)")
    parser.add_argument(
        "--encoders",
        default="",
        help="comma-separated encoder names to compare (e.g. minilm,use-m,hybrid): English and "
        "non-English accuracy on the shipped routes, and CLINC150 unless --routes-eval",
    )
    parser.add_argument("--multilingual-data", type=Path, default=MULTILINGUAL_DATA)
    parser.add_argument("--intents", type=int, default=0, help="first N intents only (0 = all)")
    parser.add_argument(
        "--routes-eval", action="store_true", help="only evaluate the shipped routes"
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
