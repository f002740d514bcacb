"""Behaviour of the route scorer and of threshold fitting, on synthetic clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intent_router.errors import ConfigError, IndexError_
from intent_router.routing import scoring
from intent_router.routing.scoring import DEFAULT_THRESHOLD, Scorer, fit
from intent_router.routing.thresholds import fit_thresholds

DIM = 32


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clusters(
    n_routes: int, per_route: int, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors scattered around ``n_routes`` random unit centres."""
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.normal(size=(n_routes, DIM)))
    labels = np.repeat(np.arange(n_routes), per_route)
    noise = rng.normal(size=(len(labels), DIM)) * spread / np.sqrt(DIM)
    return _normalise(centres[labels] + noise), labels, centres


@pytest.fixture(scope="module")
def fitted() -> tuple[Scorer, np.ndarray]:
    x, y, centres = _clusters(n_routes=8, per_route=25)
    return fit(x, y, 8, iterations=100), centres


def test_queries_near_a_cluster_get_its_route_above_the_default_threshold(
    fitted: tuple[Scorer, np.ndarray],
) -> None:
    scorer, centres = fitted
    queries, labels, _ = _clusters(n_routes=8, per_route=5, seed=0)
    scores = scorer.scores(queries)
    assert scores.shape == (40, 8)
    assert scores.dtype == np.float32
    assert (scores.argmax(axis=1) == labels).all()
    assert (scores.max(axis=1) >= DEFAULT_THRESHOLD).all()
    assert (scorer.scores(centres).argmax(axis=1) == np.arange(8)).all()


def test_a_far_away_query_scores_below_the_default_threshold(
    fitted: tuple[Scorer, np.ndarray],
) -> None:
    scorer, centres = fitted
    rng = np.random.default_rng(1)
    far = rng.normal(size=(50, DIM))
    far -= (far @ centres.T) @ np.linalg.pinv(centres.T)  # orthogonal to every centre
    assert (scorer.scores(_normalise(far)).max(axis=1) < DEFAULT_THRESHOLD).all()


def test_scores_never_exceed_the_nearest_utterance_cosine(
    fitted: tuple[Scorer, np.ndarray],
) -> None:
    scorer, centres = fitted
    assert (scorer.scores(centres) <= scorer.similarity(centres) + 1e-6).all()


def test_a_multi_modal_route_matches_each_of_its_modes() -> None:
    """A route whose utterances point two ways matches queries near either way."""
    rng = np.random.default_rng(3)
    axes = np.eye(DIM)[:3]
    x = _normalise(np.repeat(axes, 6, axis=0) + 0.05 * rng.normal(size=(18, DIM)))
    y = np.array([0] * 12 + [1] * 6)  # route 0 = modes 0 and 1, route 1 = mode 2
    scorer = fit(x, y, 2)
    queries = _normalise(axes + 0.05 * rng.normal(size=(3, DIM)))
    scores = scorer.scores(queries)
    assert scores.argmax(axis=1).tolist() == [0, 0, 1]
    assert (scores.max(axis=1) > 0.8).all()


def test_save_load_round_trip_gives_identical_scores(
    fitted: tuple[Scorer, np.ndarray], tmp_path: Path
) -> None:
    scorer, centres = fitted
    path = tmp_path / "index.npz"
    np.savez(path, vectors=centres, **scorer.to_arrays())
    with np.load(path) as arrays:
        loaded = Scorer.from_arrays(arrays)
    np.testing.assert_array_equal(loaded.scores(centres), scorer.scores(centres))


def test_loading_without_scorer_arrays_is_an_index_error() -> None:
    with pytest.raises(IndexError_):
        Scorer.from_arrays({"vectors": np.zeros((1, DIM), dtype=np.float32)})


def test_fitting_is_deterministic() -> None:
    x, y, _ = _clusters(n_routes=3, per_route=10)
    first, second = fit(x, y, 3, iterations=50), fit(x, y, 3, iterations=50)
    np.testing.assert_array_equal(first.scores(x), second.scores(x))


def test_a_single_route_scores_by_nearest_utterance_cosine() -> None:
    x, y, _ = _clusters(n_routes=1, per_route=10)
    scorer = fit(x, y, 1)
    nearest = (x @ x.T).max(axis=1, keepdims=True)
    np.testing.assert_allclose(scorer.scores(x), nearest, rtol=1e-6)


@pytest.mark.parametrize(
    ("labels", "n_routes"),
    [([0, 0, 2], 3), ([0, 1, 3], 3), ([0, -1, 1], 2)],
)
def test_empty_or_unknown_routes_are_config_errors(labels: list[int], n_routes: int) -> None:
    x = _normalise(np.ones((3, DIM)))
    with pytest.raises(ConfigError):
        fit(x, labels, n_routes)


def test_fit_thresholds_separates_in_scope_from_out_of_scope() -> None:
    rng = np.random.default_rng(2)
    predicted = rng.integers(0, 5, size=300)
    in_scope = rng.uniform(0.55, 0.9, size=200)
    out_of_scope = rng.uniform(0.1, 0.45, size=100)
    gold = np.concatenate([predicted[:200], -np.ones(100, dtype=np.int64)])
    threshold, per_route = fit_thresholds(
        np.concatenate([in_scope, out_of_scope]), predicted, gold, n_routes=5
    )
    assert per_route is None
    assert out_of_scope.max() < threshold <= in_scope.min()


def test_per_route_thresholds_fall_back_to_the_global_one_when_rows_are_few() -> None:
    score = np.array([0.9, 0.8, 0.2, 0.7, 0.3])
    predicted = np.array([0, 0, 0, 1, 1])
    gold = np.array([0, 0, -1, 1, -1])
    threshold, per_route = fit_thresholds(
        score, predicted, gold, per_route=True, min_rows_per_route=3
    )
    assert per_route is not None
    assert 0.3 < threshold <= 0.7
    assert per_route[1] == pytest.approx(threshold)
    assert 0.2 < per_route[0] <= 0.8


def test_fit_thresholds_rejects_mismatched_inputs() -> None:
    with pytest.raises(ConfigError):
        fit_thresholds([0.5, 0.6], [0], [0, 1])


def test_the_default_threshold_is_on_the_cosine_scale() -> None:
    assert 0.0 < scoring.DEFAULT_THRESHOLD < 1.0


def _with_none_and_negatives() -> tuple[Scorer, np.ndarray, np.ndarray]:
    """4 route clusters, a none cluster (centre 4) and a negative of route 0 at centre 5."""
    x, y, centres = _clusters(n_routes=6, per_route=20, seed=4)
    routes = y < 4
    none = scoring.Examples(x[y == 4], np.zeros(20, dtype=np.int64))
    negatives = scoring.Examples(centres[5:6], np.array([0]))
    scorer = fit(x[routes], y[routes], 4, none=none, negatives=negatives, iterations=100)
    return scorer, x, centres


def test_a_none_class_scores_queries_among_its_utterances_above_every_route() -> None:
    scorer, _, centres = _with_none_and_negatives()
    assert scorer.has_none and scorer.weights.shape[1] == 5
    none_score, none_route = scorer.none_scores(centres)
    route_best = scorer.scores(centres).max(axis=1)
    assert none_score[4] > route_best[4]  # the none cluster's centre
    assert (none_score[:4] < route_best[:4]).all()  # route centres
    assert none_route.tolist() == [0] * 6
    assert (scorer.alpha, scorer.sharpness) == (scoring.NONE_ALPHA, scoring.NONE_SHARPNESS)


def test_a_query_nearer_to_a_routes_negative_than_to_its_utterances_is_repelled() -> None:
    scorer, _, centres = _with_none_and_negatives()
    repelled = scorer.repelled(centres)
    assert repelled[5].tolist() == [True, False, False, False]
    assert not repelled[np.arange(4), np.arange(4)].any()  # never from its own route


def test_without_none_routes_nothing_changes() -> None:
    x, y, centres = _clusters(n_routes=3, per_route=10)
    scorer = fit(x, y, 3, iterations=50)
    assert not scorer.has_none
    assert np.isneginf(scorer.none_scores(centres)[0]).all()
    assert not scorer.repelled(centres).any()
    old_index = {k: v for k, v in scorer.to_arrays().items() if k in scoring._ARRAY_KEYS}
    np.testing.assert_array_equal(
        Scorer.from_arrays(old_index).scores(centres), scorer.scores(centres)
    )


def test_none_and_negatives_survive_the_round_trip(tmp_path: Path) -> None:
    scorer, _, centres = _with_none_and_negatives()
    path = tmp_path / "scorer.npz"
    np.savez(path, **scorer.to_arrays())
    with np.load(path) as arrays:
        loaded = Scorer.from_arrays(arrays)
    np.testing.assert_array_equal(loaded.none_scores(centres)[0], scorer.none_scores(centres)[0])
    np.testing.assert_array_equal(loaded.repelled(centres), scorer.repelled(centres))


def test_the_none_class_weight_is_capped_for_small_route_sets() -> None:
    assert scoring.none_class_weight(15000, 150, 100) == pytest.approx(5.0)
    # 4 routes x 10 utterances, 12 none utterances: at most a quarter of 40 in total.
    assert scoring.none_class_weight(40, 4, 12) == pytest.approx(10 / 12)


def test_each_block_scores_its_queries_as_its_own_scorer_would() -> None:
    """A hybrid's vectors: [a | b] per utterance, one block per query. The block scorer
    gives a query filling block a exactly the scores of a scorer fitted on block a alone,
    none class included, and likewise for b: no head or bias is shared."""
    a, y, centres_a = _clusters(n_routes=4, per_route=12, seed=5)
    b, _, centres_b = _clusters(n_routes=4, per_route=12, seed=6)
    none_a, _, _ = _clusters(n_routes=1, per_route=8, seed=7)
    none_b, _, _ = _clusters(n_routes=1, per_route=8, seed=8)
    none_labels = np.zeros(8, dtype=np.int64)
    both = fit(
        np.hstack([a, b]),
        y,
        4,
        none=scoring.Examples(np.hstack([none_a, none_b]), none_labels),
        blocks=[0, DIM, 2 * DIM],
        iterations=60,
    )
    zeros = np.zeros((4, DIM), dtype=np.float32)
    for block, (own, none_own, queries) in enumerate(
        [(a, none_a, np.hstack([centres_a, zeros])), (b, none_b, np.hstack([zeros, centres_b]))]
    ):
        alone = fit(own, y, 4, none=scoring.Examples(none_own, none_labels), iterations=60)
        single = queries[:, block * DIM : (block + 1) * DIM]
        assert (both.block_of(queries) == block).all()
        np.testing.assert_allclose(both.scores(queries), alone.scores(single), atol=1e-5)
        np.testing.assert_allclose(both.none_scores(queries)[0], alone.none_scores(single)[0],
                                   atol=1e-5)  # fmt: skip
    # The blocks and the per-block bias survive the round trip through the index arrays.
    again = Scorer.from_arrays(both.to_arrays())
    assert again.blocks.tolist() == [0, DIM, 2 * DIM] and again.bias.shape == (2, 5)


def test_an_index_scorer_saved_before_blocks_loads_as_one_block() -> None:
    x, y, _ = _clusters(n_routes=3, per_route=10)
    scorer = fit(x, y, 3, iterations=30)
    arrays = scorer.to_arrays()
    del arrays["scorer_blocks"]
    arrays["scorer_bias"] = arrays["scorer_bias"][0]  # the old (n_routes,) shape
    old = Scorer.from_arrays(arrays)
    assert old.blocks.tolist() == [0, DIM]
    np.testing.assert_array_equal(old.scores(x[:5]), scorer.scores(x[:5]))
    arrays["scorer_blocks"] = np.array([0, 10, DIM])
    with pytest.raises(IndexError_, match="rebuild"):
        Scorer.from_arrays(arrays)
