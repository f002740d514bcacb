"""Routing accuracy on CLINC150 and on the shipped LLM routes, through the project's own code.

CLINC150 (``--data``, see the README beside it): one route per intent from ``train``
(100 utterances each), written as route YAML files into a temporary folder; a cold build
into a fresh temporary index with :func:`intent_router.build.build_index` (the code of
``intent-router build``); thresholds fitted on ``val`` + ``oos_val`` with
``intent-router fit``; the figures are ``intent-router eval --json`` on ``test`` +
``oos_test`` only. For reference (not in the JSON) the same evaluation at the default
threshold, before fitting. Then one route gets 3 more utterances and the index is rebuilt:
only those 3 are embedded.

CLINC150 with a none route (section "none route", :func:`clinc_none_route`): the same
routes plus a ``kind: none`` route made of the 100 ``oos_train`` utterances, rebuilt
incrementally into the same index (only those 100 are embedded); ``intent-router fit`` on
``val`` + ``oos_val`` under ``--objective`` (default ``oos-recall:0.9``) and, for the
trade-off, under a few other objectives (through the functions those commands call, with
val and test embedded once); every figure is on ``test`` + ``oos_test``, never used to
choose anything. With ``--cache`` the CLINC build is warm on later runs
(``build_utterances_per_s`` is then null).

Shipped routes (``--routes``, default ``routes/``) on ``--llm-data`` (default
``tests/data/llm_requests.jsonl``) at the default threshold: ``intent-router eval --json``.
``--routes-eval`` runs only this part (a few seconds of embedding) and the next one.

Conversations (``--conversations``, default ``scripts/data/conversations.jsonl``) on the
shipped routes: each chat routed on its last user turn alone (before) and as a conversation
(:meth:`RouterService.route_conversation`, after), accuracy per kind (follow-ups that stay,
topic switches) on each split (``train`` and ``dev``: the turn model is fitted on them;
``holdout``, ``fresh``, ``test`` and ``unseen`` = those three together; see
scripts/data/README.md) and all together; then ``POST /route``
latency for a conversation of 6 user turns against a single query (median ratio, one run).

    python3 scripts/bench_accuracy.py                # everything (~25 min on 2 busy cores)
    python3 scripts/bench_accuracy.py --routes-eval  # shipped routes only
    python3 scripts/bench_accuracy.py --intents 10   # a quick CLINC run on 10 intents
    python3 scripts/bench_accuracy.py --cache /tmp/ba  # keep indexes and embedding caches

The last line printed is one JSON object: in_scope_accuracy, oos_recall, overall_accuracy,
macro_f1, build_utterances_per_s, fit_threshold, rebuild_embedded, rebuild_reused,
llm_routes_in_scope_accuracy, llm_routes_oos_recall (only the last two with --routes-eval),
multiturn_follow_up, multiturn_switch, multiturn_last_turn_only_follow_up,
multiturn_last_turn_only_switch, multiturn_holdout_follow_up, multiturn_holdout_switch,
multiturn_fresh_follow_up, multiturn_fresh_switch, multiturn_route_latency_ratio,
multiturn_{train,dev,test,unseen}_{follow_up,switch} (the multiturn keys also with
--routes-eval);
and for the none route: none_route_in_scope_accuracy, none_route_oos_recall,
none_route_overall_accuracy, none_route_macro_f1, none_route_objective,
none_route_threshold, none_route_oos_refused_by_none_route, none_route_rebuild_embedded,
none_route_sweep (objective -> [in-scope accuracy, out-of-scope recall]).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from intent_router import cli
from intent_router.build import BuildReport, build_index
from intent_router.config import Settings
from intent_router.embedding.choice import load_encoder
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import RouteIndex, load_index
from intent_router.routing.evaluation import evaluate, format_report, load_dataset
from intent_router.routing.fitting import as_thresholds, embed_for_fit, fit_blocks, gold_routes
from intent_router.routing.loader import RouteSet, load_routes
from intent_router.routing.matcher import Matcher
from intent_router.routing.thresholds import Objective
from intent_router.service import RouterService

REPO = Path(__file__).resolve().parents[1]
CLINC = REPO / "../shared/data/clinc150/data_full.json"
LLM_DATA = REPO / "tests/data/llm_requests.jsonl"
LLM_ROUTES = REPO / "routes"
CONVERSATIONS = REPO / "scripts/data/conversations.jsonl"
MULTILINGUAL_DATA = REPO / "scripts/data/multilingual.jsonl"
FITTED_SPLITS = ("train", "dev")  # the turn model's weights come from these chats
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
        cached = Path(args.cache) if args.cache else work
        if args.encoders:
            figures.update(compare_encoders(args, work, cached))
        elif not args.routes_eval:
            figures.update(clinc(args, encoder, work, cached))
            figures.update(clinc_none_route(args, encoder, work, cached))
        if not args.encoders:
            figures.update(shipped_routes(args, encoder, work))
            figures.update(multiturn(args, encoder, work))
    print(json.dumps(figures))
    return 0


def _clinc_intents(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    intents = sorted({intent for _, intent in data["train"]})
    return data, intents[: args.intents] if args.intents else intents


def clinc(args: argparse.Namespace, encoder: Encoder, work: Path, cached: Path) -> dict[str, Any]:
    data, intents = _clinc_intents(args)
    keep = set(intents)
    routes_dir, index_dir = work / "clinc-routes", cached / "clinc-index"
    routes_dir.mkdir()
    for intent in intents:
        utterances = [text for text, label in data["train"] if label == intent]
        _write_route(routes_dir / f"{intent}.yaml", intent, utterances)
    val = _write_dataset(work / "val.jsonl", data["val"] + data["oos_val"], keep)
    test = _write_dataset(work / "test.jsonl", data["test"] + data["oos_test"], keep)
    common = _flags(args, routes_dir, index_dir)

    print(f"== CLINC150: {len(intents)} routes from train, cold build into {index_dir}")
    _, report = build_index(routes_dir, index_dir, encoder)
    _print_build(report)

    print("\n== reference: test + oos_test at the default threshold (not fitted)")
    default = _cli_eval_json(common, test)
    print(json.dumps(default))

    print(f"\n== fit thresholds on val + oos_val ({val})")
    _cli_fit(common, val)
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
    original = path.read_text(encoding="utf-8")
    route = yaml.safe_load(original)
    route["utterances"] += EXTRA_UTTERANCES
    path.write_text(yaml.safe_dump(route, sort_keys=False), encoding="utf-8")
    _, rebuild = build_index(routes_dir, index_dir, encoder)
    _print_build(rebuild)
    path.write_text(original, encoding="utf-8")  # the none-route section starts from train
    return {
        "in_scope_accuracy": result["in_scope_accuracy"],
        "oos_recall": result["oos_recall"],
        "overall_accuracy": result["overall_accuracy"],
        "macro_f1": result["macro_f1"],
        "build_utterances_per_s": round(report.utterances_per_s, 1) if report.embedded else None,
        "fit_threshold": None if threshold is None else round(threshold, 4),
        "rebuild_embedded": rebuild.embedded,
        "rebuild_reused": rebuild.reused,
    }


SWEEP = ("macro-f1", "oos-recall:0.8", "oos-recall:0.9", "oos-recall:0.95")


def clinc_none_route(
    args: argparse.Namespace, encoder: Encoder, work: Path, cached: Path
) -> dict[str, Any]:
    """The routes of :func:`clinc` plus a ``kind: none`` route of ``oos_train``."""
    data, intents = _clinc_intents(args)
    routes_dir, index_dir = work / "clinc-routes", cached / "clinc-index"
    none_texts = [text for text, _ in data["oos_train"]]
    (routes_dir / "out_of_scope.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "out_of_scope",
                "kind": "none",
                "description": "CLINC150 oos_train: requests that belong to no route",
                "utterances": none_texts,
            },
            sort_keys=False,
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    val, test = work / "val.jsonl", work / "test.jsonl"
    common = _flags(args, routes_dir, index_dir)
    print(f"\n== none route: {len(intents)} routes + kind: none route of oos_train")
    _, report = build_index(routes_dir, index_dir, encoder)
    _print_build(report)

    print(f"\n== fit --objective {args.objective} on val + oos_val; eval on test + oos_test")
    _cli_fit(common, val, "--objective", args.objective)
    chosen = _cli_eval_json(common, test)
    print(json.dumps(chosen))
    routes = load_routes(routes_dir)
    fitted = load_index(index_dir, routes_fingerprint=routes.fingerprint, encoder_id=encoder.id)
    threshold = fitted.thresholds.global_threshold
    sweep = objective_sweep(routes, fitted, encoder, val, test, per_route_of=args.objective)
    print("\ntrade-off (objective fitted on val: in-scope accuracy / out-of-scope recall on test):")
    for objective, (accuracy, recall) in sweep.items():
        print(f"  {objective:<16} {accuracy:.2%} / {recall:.2%}")
    return {
        "none_route_in_scope_accuracy": chosen["in_scope_accuracy"],
        "none_route_oos_recall": chosen["oos_recall"],
        "none_route_overall_accuracy": chosen["overall_accuracy"],
        "none_route_macro_f1": chosen["macro_f1"],
        "none_route_oos_refused_by_none_route": chosen["oos_refused_by_none_route"],
        "none_route_objective": args.objective,
        "none_route_threshold": None if threshold is None else round(threshold, 4),
        "none_route_rebuild_embedded": report.embedded,
        "none_route_sweep": sweep,
    }


def objective_sweep(
    routes: RouteSet,
    index: RouteIndex,
    encoder: Encoder,
    val: Path,
    test: Path,
    *,
    per_route_of: str,
) -> dict[str, list[float]]:
    """What ``fit --objective X`` then ``eval`` give for each X of :data:`SWEEP`, through
    the functions those commands call, with val and test embedded once."""
    fit_rows = load_dataset(val, known_routes=routes.names)
    test_rows = load_dataset(test, known_routes=routes.names)
    fit_blocks_rows = embed_for_fit(encoder, fit_rows)
    test_vectors = encoder.encode([e.text for e in test_rows])
    matcher = Matcher(routes, index)
    gold = gold_routes(matcher, fit_rows)
    sweep: dict[str, list[float]] = {}
    for objective in dict.fromkeys([*SWEEP, per_route_of]):
        fits = fit_blocks(matcher, fit_blocks_rows, gold, objective=Objective.parse(objective))
        index.thresholds = as_thresholds(fits, encoder.blocks)
        decisions = Matcher(routes, index).decide(test_vectors)
        report = evaluate([e.route for e in test_rows], [d.route for d in decisions])
        sweep[objective] = [round(report.in_scope_accuracy, 4), round(report.oos_recall, 4)]
        if objective == per_route_of:
            print(f"\n== objective {objective}: per route on test + oos_test (top 12 rows)")
            print("\n".join(format_report(report).splitlines()[:12]))
    return sweep


def shipped_routes(args: argparse.Namespace, encoder: Encoder, work: Path) -> dict[str, Any]:
    index_dir = work / "llm-index"
    print(f"\n== shipped routes {args.routes} on {args.llm_data}, default threshold")
    _, report = build_index(Path(args.routes), index_dir, encoder)
    _print_build(report)
    common = _flags(args, Path(args.routes), index_dir)
    text = _run_cli(["eval", *common, "--dataset", str(args.llm_data)])
    print(text)
    summary = _cli_eval_json(common, Path(args.llm_data))
    return {
        "llm_routes_in_scope_accuracy": summary["in_scope_accuracy"],
        "llm_routes_oos_recall": summary["oos_recall"],
    }


def multiturn(args: argparse.Namespace, encoder: Encoder, work: Path) -> dict[str, Any]:
    """Conversations: last turn alone vs the conversation, per kind and split; /route latency."""
    lines = Path(args.conversations).read_text(encoding="utf-8").splitlines()
    chats = [json.loads(line) for line in lines if line.strip()]
    index_dir = work / "llm-index"  # built by shipped_routes(); only new texts get embedded
    build_index(Path(args.routes), index_dir, encoder)
    settings = Settings(routes_dir=Path(args.routes), index_dir=index_dir, models_file=None)
    print(f"\n== conversations {args.conversations}: {len(chats)} chats, shipped routes")
    rows = asyncio.run(_route_chats(RouterService.from_settings(settings, encoder), chats))
    accuracy: dict[tuple[str, str, str], float] = {}
    print(f"{'split':8} {'kind':10} {'chats':>5} {'last turn only':>15} {'conversation':>13}")
    for split in ("train", "dev", "holdout", "fresh", "test", "unseen", "all"):
        for kind in ("follow_up", "switch"):
            sub = [r for r in rows if r[0]["kind"] == kind and _in_split(r[0], split)]
            for way, column in (("last", 1), ("conversation", 2)):
                hits = sum(r[column] == r[0]["route"] for r in sub)
                accuracy[(split, kind, way)] = round(hits / max(len(sub), 1), 4)
            before, after = accuracy[(split, kind, "last")], accuracy[(split, kind, "conversation")]
            print(f"{split:8} {kind:10} {len(sub):5d} {before:15.1%} {after:13.1%}")
    print("misrouted as a conversation (chats the method was not fitted on):")
    for chat, _, route, why in rows:
        if chat["split"] not in FITTED_SPLITS and route != chat["route"]:
            print(f"  {chat['kind']:9} want {chat['route']!s:16} got {route!s:16} ({why})")
    ratio = _route_latency_ratio(settings, encoder)
    return {
        "multiturn_follow_up": accuracy[("all", "follow_up", "conversation")],
        "multiturn_switch": accuracy[("all", "switch", "conversation")],
        "multiturn_last_turn_only_follow_up": accuracy[("all", "follow_up", "last")],
        "multiturn_last_turn_only_switch": accuracy[("all", "switch", "last")],
        "multiturn_holdout_follow_up": accuracy[("holdout", "follow_up", "conversation")],
        "multiturn_holdout_switch": accuracy[("holdout", "switch", "conversation")],
        "multiturn_fresh_follow_up": accuracy[("fresh", "follow_up", "conversation")],
        "multiturn_fresh_switch": accuracy[("fresh", "switch", "conversation")],
        "multiturn_route_latency_ratio": ratio,
        "multiturn_train_follow_up": accuracy[("train", "follow_up", "conversation")],
        "multiturn_train_switch": accuracy[("train", "switch", "conversation")],
        "multiturn_dev_follow_up": accuracy[("dev", "follow_up", "conversation")],
        "multiturn_dev_switch": accuracy[("dev", "switch", "conversation")],
        "multiturn_test_follow_up": accuracy[("test", "follow_up", "conversation")],
        "multiturn_test_switch": accuracy[("test", "switch", "conversation")],
        "multiturn_unseen_follow_up": accuracy[("unseen", "follow_up", "conversation")],
        "multiturn_unseen_switch": accuracy[("unseen", "switch", "conversation")],
    }


def _in_split(chat: dict[str, Any], split: str) -> bool:
    """``all``; ``unseen``: every split the turn model was not fitted on; or one split."""
    if split == "unseen":
        return chat["split"] not in FITTED_SPLITS
    return split in ("all", chat["split"])


async def _route_chats(
    service: RouterService, chats: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], str | None, str | None, str]]:
    await service.start()
    try:
        rows = []
        for chat in chats:
            turns = [(m["role"], m["content"]) for m in chat["messages"]]
            last = [text for role, text in turns if role == "user"][-1]
            alone = await service.route(last)
            routed = await service.route_conversation(turns)
            why = routed.conversation.why if routed.conversation else ""
            rows.append((chat, alone.decision.route, routed.decision.route, why))
        return rows
    finally:
        await service.aclose()


LATENCY_CHAT = [
    "write a python function that reads a CSV file of orders",
    "add a column with the total price of each order",
    "now group the totals by customer",
    "can you sort the customers by total, largest first?",
    "also handle rows where the price is missing",
    "ok and how do I write that back to a new CSV?",
]


def _route_latency_ratio(settings: Settings, encoder: Encoder, rounds: int = 40) -> float:
    """Median ``POST /route`` time: 6 user turns (11 messages) over the last turn alone."""
    from fastapi.testclient import TestClient

    from intent_router.api.app import create_app

    messages = []
    for i, text in enumerate(LATENCY_CHAT):
        if i:
            messages.append({"role": "assistant", "content": f"Here is step {i} of the script."})
        messages.append({"role": "user", "content": text})
    single, conversation = [], []
    with TestClient(create_app(settings, encoder=encoder)) as client:
        for _ in range(3):  # warm-up
            client.post("/route", json={"messages": messages})
        for _ in range(rounds):  # interleaved, so both see the same machine load
            for body, times in (
                ({"query": LATENCY_CHAT[-1]}, single),
                ({"messages": messages}, conversation),
            ):
                started = time.perf_counter()
                client.post("/route", json=body).raise_for_status()
                times.append(time.perf_counter() - started)
    one, many = statistics.median(single), statistics.median(conversation)
    print(
        f"POST /route median: single query {one * 1000:.1f} ms, 6 user turns "
        f"{many * 1000:.1f} ms: ratio {many / one:.2f} ({rounds} rounds, interleaved)"
    )
    return round(many / one, 2)


def _flags(args: argparse.Namespace, routes_dir: Path, index_dir: Path) -> list[str]:
    """The ``--routes``/``--index``/``--encoder`` flags every command of a section takes."""
    common = ["--routes", str(routes_dir), "--index", str(index_dir)]
    return common + (["--encoder", args.encoder] if args.encoder else [])


def compare_encoders(args: argparse.Namespace, work: Path, cached: Path) -> dict[str, Any]:
    """Each encoder of ``--encoders``: the shipped routes at its default threshold on the
    LLM requests (English) and on the multilingual set (all rows and its held-out ``test``
    half), then CLINC150 without and with the none route (fitted thresholds) unless
    ``--routes-eval``. With ``minilm`` listed first, each other encoder also reports the
    share of English LLM requests it decides exactly as MiniLM does (same route)."""
    figures: dict[str, Any] = {}
    minilm_routes: list[str | None] | None = None
    for name in [n.strip() for n in args.encoders.split(",") if n.strip()]:
        print(f"\n==== encoder {name}")
        encoder = load_encoder(name)
        folder = work / name
        folder.mkdir()
        shipped, llm_routes = _shipped_by_language(args, name, encoder, folder)
        figures.update(shipped)
        if name == "minilm":
            minilm_routes = llm_routes
        elif minilm_routes is not None:
            same = np.mean([a == b for a, b in zip(llm_routes, minilm_routes, strict=True)])
            print(f"{name}: {same:.2%} of the LLM requests get MiniLM's route")
            figures[f"{name}_llm_same_route_as_minilm"] = round(float(same), 4)
        if not args.routes_eval:
            one = argparse.Namespace(**{**vars(args), "encoder": name})
            clinc_figures = clinc(one, encoder, folder, cached / name)
            clinc_figures.update(clinc_none_route(one, encoder, folder, cached / name))
            for key in (
                "in_scope_accuracy",
                "oos_recall",
                "fit_threshold",
                "none_route_in_scope_accuracy",
                "none_route_oos_recall",
                "none_route_threshold",
            ):
                figures[f"{name}_clinc_{key}"] = clinc_figures[key]
    return figures


def _shipped_by_language(
    args: argparse.Namespace, name: str, encoder: Encoder, folder: Path
) -> tuple[dict[str, Any], list[str | None]]:
    """Figures on the shipped routes, and the route given to each LLM request."""
    llm_routes: list[str | None] = []
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
        if tag == "llm":
            llm_routes = [d.route for d in decisions]
    return figures, llm_routes


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


def _cli_fit(common: list[str], dataset: Path, *extra: str) -> str:
    out = _run_cli(["fit", *common, "--dataset", str(dataset), *extra]).strip()
    print(out)
    return out


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
    parser.add_argument(
        "--conversations", type=Path, default=CONVERSATIONS, help="multi-turn chats (JSONL)"
    )
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
    parser.add_argument(
        "--objective",
        default="oos-recall:0.9",
        help="fit objective of the none-route section (see intent-router fit --help)",
    )
    parser.add_argument(
        "--cache",
        default="",
        help="folder for the CLINC index and its embedding cache, kept between runs "
        "(default: a temporary folder, so the build is cold)",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
