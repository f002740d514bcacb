"""A none route and negatives change decisions, end to end with the real encoder."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SMALL_ROUTES, RouteWriter

from intent_router.build import build_index
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import current_build
from intent_router.routing.loader import load_routes
from intent_router.routing.matcher import Decision, Matcher

NONE_ROUTE = {
    "kind": "none",
    "description": "requests no route answers",
    "utterances": [
        "what's the weather going to be like tomorrow",
        "book me a table for two tonight",
        "what time does the supermarket close",
        "recommend a good movie to watch",
        "how tall is mount everest",
        "who won the football game last night",
        "set an alarm for seven am",
        "find me a cheap flight to rome",
        "how do I get a stain out of a shirt",
        "what should I cook for dinner",
    ],
}
OFF_TOPIC = "how is the weather today"
IN_SCOPE = {
    "hello how are you": "chitchat",
    "solve x^2=4": "math",
    "translate hello into german": "translation",
    "write a function that sorts a list in python": "code",
}


def _decide(folder: Path, index_dir: Path, encoder: Encoder, queries: list[str]) -> list[Decision]:
    routes = load_routes(folder)
    index, _ = build_index(routes, index_dir, encoder)
    return Matcher(routes, index).decide(encoder.encode(queries))


def test_a_none_route_refuses_what_lands_among_its_utterances(
    write_routes: RouteWriter, tmp_path: Path, encoder: Encoder
) -> None:
    queries = [OFF_TOPIC, *IN_SCOPE]
    before = _decide(write_routes(), tmp_path / "index", encoder, queries)
    assert before[0].route == "chitchat"  # small talk is the nearest thing it knows
    after = _decide(
        write_routes({**SMALL_ROUTES, "out_of_scope": NONE_ROUTE}, folder="with-none"),
        tmp_path / "index",
        encoder,
        queries,
    )
    refused = after[0]
    assert refused.route is None and refused.reason == "none_route"
    assert refused.none_route == "out_of_scope"
    assert refused.none_score is not None and refused.none_score >= refused.score
    assert refused.chain == []  # the default chain
    assert [d.route for d in after[1:]] == list(IN_SCOPE.values())
    assert all(d.reason == "matched" for d in after[1:])
    record = refused.to_dict()
    assert {"route", "score", "threshold", "candidates", "chain"} <= set(record)
    assert record["reason"] == "none_route" and record["none_route"] == "out_of_scope"


def test_negatives_push_a_query_off_their_route(
    write_routes: RouteWriter, tmp_path: Path, encoder: Encoder
) -> None:
    chitchat = {
        **SMALL_ROUTES["chitchat"],
        "negatives": ["what is the weather like today", "will it rain this afternoon"],
    }
    folder = write_routes({**SMALL_ROUTES, "chitchat": chitchat})
    decisions = _decide(folder, tmp_path / "index", encoder, [OFF_TOPIC, "hello how are you"])
    assert decisions[0].route != "chitchat"
    assert decisions[0].candidates[0].route == "chitchat"  # still its best score ...
    assert "chitchat" in decisions[0].repelled  # ... but refused by a negative
    assert decisions[1].route == "chitchat" and decisions[1].repelled == []


def test_build_embeds_none_routes_and_negatives_incrementally_into_the_manifest(
    write_routes: RouteWriter, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    build_index(write_routes(), index_dir, encoder)
    chitchat = {**SMALL_ROUTES["chitchat"], "negatives": ["what is the weather like today"]}
    folder = write_routes(
        {**SMALL_ROUTES, "chitchat": chitchat, "out_of_scope": NONE_ROUTE}, folder="more"
    )
    _, report = build_index(folder, index_dir, encoder)
    assert report.embedded == len(NONE_ROUTE["utterances"]) + 1  # nothing else re-embedded
    assert (report.none_routes, report.none_utterances, report.negatives) == (1, 10, 1)
    manifest = json.loads((current_build(index_dir) / "manifest.json").read_text())
    assert [r["name"] for r in manifest["routes"]] == ["chitchat", "code", "math", "translation"]
    assert manifest["none_routes"][0]["name"] == "out_of_scope"
    assert manifest["counts"]["none_utterances"] == 10 and manifest["counts"]["negatives"] == 1
    assert manifest["routes_fingerprint"] == load_routes(folder).fingerprint


def test_build_warns_about_repeats_and_reports_overlapping_routes(
    write_routes: RouteWriter, tmp_path: Path, encoder: Encoder
) -> None:
    math = dict(SMALL_ROUTES["math"])
    math["utterances"] = [
        *math["utterances"],  # type: ignore[misc]
        "Solve the equation 3x + 7 = 22",  # a repeat, differently cased
        "write a python function that computes a derivative",  # code, really
    ]
    folder = write_routes({**SMALL_ROUTES, "math": math})
    index_dir = tmp_path / "index"
    _, report = build_index(folder, index_dir, encoder)
    assert report.utterances == 41
    assert len(report.warnings) == 1 and "math.yaml:" in report.warnings[0]
    assert report.overlaps is not None
    pairs = {(o.route, o.other_route) for o in report.overlaps.top}
    assert ("math", "code") in pairs
    manifest = json.loads((current_build(index_dir) / "manifest.json").read_text())
    assert manifest["warnings"]["count"] == 1
    assert manifest["overlaps"]["count"] == report.overlaps.count
    assert any(
        o["utterance"] == "write a python function that computes a derivative"
        for o in manifest["overlaps"]["top"]
    )


def test_a_none_route_is_never_chosen_nor_listed_as_a_candidate(
    write_routes: RouteWriter, tmp_path: Path, encoder: Encoder
) -> None:
    folder = write_routes({**SMALL_ROUTES, "out_of_scope": NONE_ROUTE})
    decisions = _decide(folder, tmp_path / "index", encoder, NONE_ROUTE["utterances"][:3])
    for decision in decisions:
        assert decision.route is None
        assert all(c.route != "out_of_scope" for c in decision.candidates)
