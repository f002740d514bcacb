"""Threshold fitting under each objective, on synthetic scores with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from intent_router.errors import ConfigError
from intent_router.routing.thresholds import Objective, fit_thresholds


def _rows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """200 in-scope rows (10 % of them predicted wrong) and 100 out-of-scope rows whose
    scores overlap the in-scope ones: every objective lands somewhere else."""
    rng = np.random.default_rng(seed)
    gold = np.concatenate([rng.integers(0, 4, 200), -np.ones(100, dtype=np.int64)])
    predicted = np.where(rng.uniform(size=300) < 0.1, (gold + 1) % 4, gold)
    predicted[200:] = rng.integers(0, 4, 100)
    score = np.concatenate([rng.normal(0.6, 0.1, 200), rng.normal(0.4, 0.1, 100)])
    return score, predicted, gold


def _figures(t: float, score: np.ndarray, pred: np.ndarray, gold: np.ndarray) -> tuple:
    final = np.where(score >= t, pred, -1)
    in_scope = gold >= 0
    accuracy = (final == gold)[in_scope].mean()
    recall = (final < 0)[~in_scope].mean()
    routed = final >= 0
    precision = (final == gold)[routed].mean()
    return accuracy, recall, precision


@pytest.mark.parametrize("target", [0.8, 0.9, 0.97])
def test_oos_recall_objective_reaches_its_target_at_the_best_accuracy(target: float) -> None:
    score, pred, gold = _rows()
    t, _ = fit_thresholds(score, pred, gold, objective=Objective("oos-recall", target))
    _, recall, _ = _figures(t, score, pred, gold)
    assert recall >= target
    # Any lower threshold (more in-scope routed) misses the target.
    lower = np.sort(score[score < t])[-1:]
    for other in lower - 1e-9:
        assert _figures(other, score, pred, gold)[1] < target


def test_a_higher_recall_target_costs_in_scope_accuracy() -> None:
    score, pred, gold = _rows()
    figures = [
        _figures(
            fit_thresholds(score, pred, gold, objective=Objective("oos-recall", r))[0],
            score,
            pred,
            gold,
        )
        for r in (0.6, 0.8, 0.95)
    ]
    accuracies = [f[0] for f in figures]
    recalls = [f[1] for f in figures]
    assert accuracies[0] > accuracies[1] > accuracies[2]
    assert recalls[0] < recalls[1] < recalls[2]


def test_precision_objective_keeps_routed_answers_right() -> None:
    score, pred, gold = _rows()
    t, _ = fit_thresholds(score, pred, gold, objective=Objective("precision", 0.9))
    _, _, precision = _figures(t, score, pred, gold)
    assert precision >= 0.9
    # Routing one more row (the next lower score) would break the precision floor.
    below = np.sort(score[score < t])[-1] - 1e-9
    assert _figures(below, score, pred, gold)[2] < 0.9


def test_rows_refused_whatever_the_threshold_stay_refused() -> None:
    score = np.array([0.9, 0.8, 0.85, 0.2])
    pred = np.array([0, 1, 1, 0])
    gold = np.array([0, 1, -1, -1])
    # Without "refused", the out-of-scope row at 0.85 forces a threshold above 0.8.
    alone, _ = fit_thresholds(score, pred, gold, objective=Objective("oos-recall", 1.0))
    assert alone > 0.85
    refused = np.array([False, False, True, False])
    t, _ = fit_thresholds(
        score, pred, gold, objective=Objective("oos-recall", 1.0), refused=refused
    )
    assert 0.2 < t <= 0.8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("macro-f1", Objective("macro-f1")),
        ("oos-recall:0.8", Objective("oos-recall", 0.8)),
        ("precision:0.95", Objective("precision", 0.95)),
    ],
)
def test_objectives_parse_and_print_back(text: str, expected: Objective) -> None:
    assert Objective.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["f1", "oos-recall", "oos-recall:80", "precision:x", "macro-f1:1"])
def test_bad_objectives_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        Objective.parse(text)
    assert err.value.field == "objective"


def test_oos_recall_needs_out_of_scope_rows() -> None:
    with pytest.raises(ConfigError, match="out-of-scope rows"):
        fit_thresholds([0.5, 0.6], [0, 1], [0, 1], objective=Objective("oos-recall", 0.9))


def test_per_route_thresholds_only_with_macro_f1() -> None:
    score, pred, gold = _rows()
    with pytest.raises(ConfigError, match="macro-f1"):
        fit_thresholds(score, pred, gold, objective=Objective("oos-recall", 0.9), per_route=True)
