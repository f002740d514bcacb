"""The overlapping-routes report: utterances nearer to another route than to their own."""

from __future__ import annotations

import numpy as np

from intent_router.routing.overlap import find_overlaps


def _unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_an_utterance_inside_another_route_is_reported_with_its_neighbour() -> None:
    vectors = _unit([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0], [0.95, 0.05, 0.1])
    labels = np.array([0, 0, 1, 1, 1])
    texts = ["a1", "a2", "b1", "b2", "b-looks-like-a"]
    report = find_overlaps(vectors, labels, ["a", "b"], texts)
    assert report.count == 1
    (overlap,) = report.top
    assert (overlap.route, overlap.utterance) == ("b", "b-looks-like-a")
    assert overlap.other_route == "a" and overlap.other_utterance in {"a1", "a2"}
    assert overlap.other_similarity > overlap.own_similarity
    assert report.pairs == [("b", "a", 1)]
    assert report.summary()["top"][0]["other_route"] == "a"


def test_separate_routes_and_single_utterance_routes_report_nothing() -> None:
    vectors = _unit([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0], [0.8, 0.2, 0])
    labels = np.array([0, 0, 1, 1, 2])  # route c has one utterance, inside a: not checked
    report = find_overlaps(vectors, labels, ["a", "b", "c"], list("vwxyz"))
    assert [(o.route, o.other_route) for o in report.top] == []


def test_the_list_is_bounded_and_worst_first() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = rng.integers(0, 3, 300)  # random labels: many overlaps
    report = find_overlaps(vectors, labels, ["a", "b", "c"], [str(i) for i in range(300)], limit=7)
    assert report.count > 7 and len(report.top) == 7
    gaps = [o.other_similarity - o.own_similarity for o in report.top]
    assert gaps == sorted(gaps, reverse=True)
    assert sum(n for _, _, n in report.pairs) == report.count
