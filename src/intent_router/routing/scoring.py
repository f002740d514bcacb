"""Route scores: how well a query embedding fits each route, on one threshold-able scale.

The method ("nearest utterance + calibrated-head penalty")
----------------------------------------------------------
Everything is fitted from the route utterance embeddings alone (L2-normalised, frozen encoder):

* the utterances themselves, grouped by route: a route's similarity to a query is the cosine
  of its **nearest utterance** (routes for LLM traffic are multi-modal — "code" spans twenty
  languages, SQL and shell — so a centroid, the mean of very different requests, sits far
  from all of them; the nearest utterance does not);
* a **multinomial logistic-regression head** ``softmax(x @ W + b)`` over the routes, trained
  full-batch with Adam and a small L2 penalty, from zero weights (so it is deterministic).

The score of route ``r`` for a query ``x`` is::

    score_r(x) = max_u cos(x, u_r) + ALPHA * log p_r(x)          (ALPHA = 0.1)

The best route is the arg-max and it is accepted when its score reaches the threshold.

Why: the linear head is the better *classifier* (on CLINC150 it picks the right intent for
~96 % of val queries, against ~87 % for the nearest utterance alone), but its probability is
over-confident far from the data, so on its own it is a weak out-of-scope signal. Cosine
similarity is the better *distance* signal and lives on a fixed scale whatever the number of
routes. Adding ``ALPHA * log p`` (always <= 0) keeps the cosine scale and only *subtracts*
when the head hesitates, and its penalty on the routes the head rules out makes the arg-max
follow the head. With one route, or routes the head separates with certainty, the score is
the plain cosine, so a default threshold in cosine units stays meaningful for any route set.

Figures (CLINC150, all-MiniLM-L6-v2; routes from ``train``, threshold fitted on
``val`` + ``oos_val`` with :func:`fit_thresholds`; ``scripts/bench_accuracy.py`` reports the
test figures): nearest-utterance cosine alone gives 87.1 % in-scope; centroid cosine 91.3 %;
the head's max probability 94.5 %; this score 94.7 % in-scope with 60 % out-of-scope recall
at the fitted threshold (val: 95.3 % / 74 %). A centroid in place of the nearest utterance
scores the same on CLINC150 (whose intents are tight clusters) but routes only 58 % of our
LLM-request evaluation set at the default threshold, against 85-90 % for this one.
The in-scope / out-of-scope trade-off is set by the threshold; with this frozen encoder the
trade-off curve passes about 94 % in-scope at 72 % out-of-scope recall on CLINC150, so a
threshold fitted on 100 ``oos_val`` rows lands on one side of that target or the other.

``DEFAULT_THRESHOLD`` (0.33, cosine units) serves route sets without labelled data. On small
route sets drawn from CLINC150 ``train`` (3 and 8 routes x 25 utterances, scored on ``val``)
0.30-0.35 keeps 96-100 % in-scope accuracy while rejecting 86-99 % of ``oos_val``; on the
shipped LLM routes and ``tests/data/llm_requests.jsonl`` 0.30 routes 93 % of requests and
rejects 76 % of the out-of-scope ones, 0.35 routes 89 % and rejects 88 %.

Threshold fitting (:func:`intent_router.routing.thresholds.fit_thresholds`) maximises, by
default, the macro-F1 over the routes plus "out of scope" as one more class; other
objectives (a target out-of-scope recall, a precision floor) are described there.
Per-route thresholds are available but off by default: with ~20 labelled rows per route they
overfit.

None routes and negatives ("what must not match")
-------------------------------------------------
A ``kind: none`` route gives examples of requests that belong to no route. They enter the
method twice:

* as **one more class of the head**, trained with the routes. The none class stands for
  everything else, a broader region than any route, and a hundred examples sample it
  thinly, so each none utterance weighs more in the loss: the class as heavy as
  ``NONE_WEIGHT`` (5) average routes, capped at ``NONE_SHARE_MAX`` (1/4) of all route
  utterances (:func:`none_class_weight`; 5 per utterance on CLINC150, ~2.5 on the shipped
  routes). ``p_r`` is then the probability of route ``r`` *against the none class too*, so
  a query the head places among the none examples loses score on every route;
* as a **nearest-neighbour competitor**: the none class is scored like a route,
  ``score_none(x) = max cos(x, none utterances) + alpha * log p_none(x)``, and a query whose
  none score reaches its best route's score is refused with reason ``none_route`` (which
  none route and its score are recorded in the decision), whatever the threshold.

Trained with a none class, the head's probability becomes an out-of-scope signal rather than
an over-confident guess, so it gets more weight and a softer softmax: ``NONE_ALPHA`` 0.4,
``NONE_SHARPNESS`` 1 (instead of 0.1 and 2). Why these: on CLINC150 (routes from ``train``,
none route from the 100 ``oos_train`` rows) the out-of-scope recall at 95 % in-scope
accuracy on ``val`` (and, looked at during the exploration, on ``test`` at 94 %) was: no
none class 0.80 (0.72); none class weighted 1, old constants 0.82 (0.76); weighted 1,
alpha 0.4 / sharpness 1 0.85 (0.82); weighted 5, alpha 0.4 / sharpness 1 0.87 (0.84);
weighted 15 0.86 (0.84); 400 iterations instead of 200 0.88 (0.85) for twice the fit
time. Worse: Mahalanobis distance (0.70) or the 5th-nearest-utterance cosine (0.73) as the
out-of-scope score, pseudo-outliers mixed from pairs of routes as extra none examples
(0.81), a stronger L2 penalty (the head under-fits). The nearest-neighbour competitor adds
nothing measurable on CLINC150 (the head already carries the none class) but matters on
small route sets: on the small sets below at threshold 0, where the threshold refuses next
to nothing, they still refuse 93-95 % of ``oos_val`` (without the none route: 1-3 %).

With a none class the refusing is done mostly by the none class, so the default threshold
is lower: ``NONE_DEFAULT_THRESHOLD`` (0.1). On small route sets drawn from CLINC150
(3 to 20 routes x 25-60 utterances, none routes of 25-50 ``oos_train`` rows, scored on
``val`` + ``oos_val``, 4 draws each) it routes 93-98 % of in-scope queries right and
refuses 95-97 % of out-of-scope ones, where the same sets without a none route at 0.33
route 95-99 % and refuse 85-96 % (optimistic for the none route: ``oos_val``
resembles ``oos_train`` more than ``oos_test`` does). With a none route, scores are lower
than the plain cosine more often, so refit (or revisit) thresholds set in route files.

**Negatives** (a route's ``negatives:``) are per-route repulsion: a query nearer to one of
route ``r``'s negatives than to any of its utterances is refused from ``r`` (listed in the
decision's ``repelled``) and falls to the next candidate, or to none. They do not enter
the head: a negative says what a route is not, not what it is.

Figures with the none route (``scripts/bench_accuracy.py``, threshold fitted on ``val`` +
``oos_val`` under each objective, reported on ``test`` + ``oos_test``, in-scope accuracy /
out-of-scope recall): ``macro-f1`` 95.1 % / 61.6 %, ``oos-recall:0.8`` 94.9 % / 72.7 %,
``oos-recall:0.9`` 94.2 % / 82.0 %, ``oos-recall:0.95`` 92.5 % / 89.7 %. Without the none
route the same protocol gives 94.7 % / 60.2 % (macro-F1); the none class moves the whole
trade-off curve (at about 94 % in-scope: 72 % out-of-scope recall before, 82-84 % now).
``oos_val`` is easier than ``oos_test``: a threshold refusing 90 % of ``oos_val`` refuses
82 % of ``oos_test``, so ask for more recall on the fit set than you need.

Blocks (the hybrid encoder)
---------------------------
A hybrid encoder's vectors are blocks, one per encoder (``embedding/hybrid.py``): an
utterance fills every block, a query one. :func:`fit` with ``blocks`` fits one head per
block, on that block's columns only (the none class included), and :meth:`Scorer.scores`
scores a query with the head of the block it fills (:meth:`Scorer.block_of`). Since the
cosine to an utterance also reads only the query's block, a query is scored exactly as a
scorer fitted on that encoder alone would score it. One head over both blocks with one bias
(the earlier design) moved English CLINC150 out-of-scope recall from 60 % to 53 %.

Cost: fitting the head takes ~45-90 s for 15,000 utterances x 150 routes on 2 busy cores
(~0.1-4 s for 8 x 25); scoring is one (m x n) matrix product, well under a millisecond per
query at 15,000 utterances.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from intent_router.errors import ConfigError, IndexError_

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

ALPHA = 0.1
"""Weight of the head's log-probability against the nearest-utterance cosine."""

SHARPNESS = 2.0
"""Inverse temperature applied to the head's logits before the log-softmax."""

NONE_ALPHA = 0.4
NONE_SHARPNESS = 1.0
"""``ALPHA`` and ``SHARPNESS`` when the head is trained with a none class (see above)."""

NONE_WEIGHT = 5.0
"""The none class weighs as much as this many average routes in the head's loss ..."""

NONE_SHARE_MAX = 0.25
"""... but at most this share of all route utterances together (small route sets)."""

NONE_MARGIN = 0.0
"""A query is refused as "none_route" when the none score reaches the best route's minus this."""

DEFAULT_THRESHOLD = 0.33
"""Threshold on the score scale for route sets without labelled data (see module docstring)."""

NONE_DEFAULT_THRESHOLD = 0.1
"""The same with none routes: the none class does most of the refusing (see above)."""

L2_PENALTY = 1e-5
ITERATIONS = 200
LEARNING_RATE = 0.05

_ARRAY_KEYS = (
    "scorer_utterances",
    "scorer_starts",
    "scorer_weights",
    "scorer_bias",
    "scorer_alpha",
    "scorer_sharpness",
)
_EMPTY_STARTS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Examples:
    """Embedded utterances with the index of the route (or none route) each belongs to."""

    vectors: FloatArray  # (n, d), L2-normalised
    labels: IntArray  # (n,)

    @classmethod
    def empty(cls, dimension: int) -> Examples:
        return cls(np.zeros((0, dimension), dtype=np.float32), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Scorer:
    """A fitted scorer: the route utterances (grouped by route) plus a linear head.

    With none routes the head has one more class ("none", the last column of ``weights``)
    and ``none_utterances`` holds their utterances grouped by none route; ``negatives``
    holds every route's negative utterances, ``negative_routes`` the route of each.
    """

    utterances: FloatArray  # (n, d), rows L2-normalised, grouped by route in route order
    starts: IntArray  # (n_routes,), index of each route's first utterance in ``utterances``
    weights: FloatArray  # (d, n_routes [+ 1 with a none class]); block b's head in its rows
    bias: FloatArray  # (n_blocks, n_routes [+ 1]); (n_routes [+ 1],) is one block
    alpha: float = ALPHA
    sharpness: float = SHARPNESS
    none_utterances: FloatArray | None = None  # (k, d) grouped by none route
    none_starts: IntArray = field(default_factory=lambda: _EMPTY_STARTS)  # (n_none_routes,)
    negatives: FloatArray | None = None  # (g, d)
    negative_routes: IntArray = field(default_factory=lambda: _EMPTY_STARTS)  # (g,) routes
    blocks: IntArray = field(default_factory=lambda: _EMPTY_STARTS)
    """Block boundaries ``[0, ..., d]`` (a hybrid encoder's; empty: one block, all columns)."""

    def __post_init__(self) -> None:
        bias = np.atleast_2d(np.asarray(self.bias, dtype=np.float32))
        d = self.utterances.shape[1]
        blocks = np.asarray(self.blocks, dtype=np.int64) if len(self.blocks) else np.array([0, d])
        if len(bias) != len(blocks) - 1 or blocks[0] != 0 or blocks[-1] != d:
            raise IndexError_(
                f"scorer blocks {blocks.tolist()} do not fit {len(bias)} heads over {d} "
                "columns: rebuild with `intent-router build`"
            )
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "blocks", blocks)

    @property
    def n_routes(self) -> int:
        return int(self.starts.shape[0])

    @property
    def has_none(self) -> bool:
        return self.none_utterances is not None and len(self.none_utterances) > 0

    @property
    def default_threshold(self) -> float:
        """The threshold to use when none was fitted on labelled data."""
        return NONE_DEFAULT_THRESHOLD if self.has_none else DEFAULT_THRESHOLD

    def similarity(self, queries: FloatArray) -> FloatArray:
        """Cosine of each query to its nearest utterance of every route: (m, n_routes)."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        nearest: FloatArray = np.maximum.reduceat(q @ self.utterances.T, self.starts, axis=1)
        return nearest

    def block_of(self, queries: FloatArray) -> IntArray:
        """(m,) the block each query fills (a hybrid query fills one; else the fullest)."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if len(self.bias) == 1:
            return np.zeros(len(q), dtype=np.int64)
        mass = np.stack([np.square(q[:, lo:hi]).sum(axis=1) for lo, hi in self._spans()], axis=1)
        which: IntArray = mass.argmax(axis=1).astype(np.int64)
        return which

    def _spans(self) -> list[tuple[int, int]]:
        return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(self.blocks)]

    def _log_probs(self, q: FloatArray) -> FloatArray:
        """The head of the block each query fills, on that block's columns only."""
        if len(self.bias) == 1:
            logits = q @ self.weights + self.bias[0]
        else:
            which = self.block_of(q)
            logits = np.empty((len(q), self.weights.shape[1]), dtype=np.float32)
            for block, (lo, hi) in enumerate(self._spans()):
                rows = which == block
                logits[rows] = q[rows, lo:hi] @ self.weights[lo:hi] + self.bias[block]
        return _log_softmax(logits * np.float32(self.sharpness))

    def scores(self, queries: FloatArray) -> FloatArray:
        """Score ``queries`` (m, d), L2-normalised, against every route: (m, n_routes)."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        log_p = self._log_probs(q)[:, : self.n_routes]
        return (self.similarity(q) + np.float32(self.alpha) * log_p).astype(np.float32)

    def none_scores(self, queries: FloatArray) -> tuple[FloatArray, IntArray]:
        """The none class scored like a route: nearest none utterance + alpha * log p_none.

        Returns (m,) scores (``-inf`` without none routes) and the none route of the
        nearest none utterance (-1 without none routes).
        """
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if not self.has_none:
            return np.full(len(q), -np.inf, dtype=np.float32), np.full(len(q), -1, np.int64)
        assert self.none_utterances is not None
        per_route = np.maximum.reduceat(q @ self.none_utterances.T, self.none_starts, axis=1)
        log_p_none = self._log_probs(q)[:, -1]
        score = per_route.max(axis=1) + np.float32(self.alpha) * log_p_none
        return score.astype(np.float32), per_route.argmax(axis=1).astype(np.int64)

    def repelled(self, queries: FloatArray) -> npt.NDArray[np.bool_]:
        """(m, n_routes): True where a route's negative is nearer to the query than any of
        its utterances — the route is refused for that query."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        out = np.zeros((len(q), self.n_routes), dtype=bool)
        if self.negatives is None or len(self.negatives) == 0:
            return out
        near_negative = np.full((len(q), self.n_routes), -np.inf, dtype=np.float32)
        np.maximum.at(
            near_negative.T, self.negative_routes, (q @ self.negatives.T).T
        )  # per route: max over its negatives
        return near_negative > self.similarity(q)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (e.g. in the index npz); see :meth:`from_arrays`."""
        dim = self.utterances.shape[1]
        empty = np.zeros((0, dim), dtype=np.float32)
        return {
            "scorer_utterances": self.utterances,
            "scorer_starts": self.starts,
            "scorer_weights": self.weights,
            "scorer_bias": self.bias,
            "scorer_alpha": np.asarray(self.alpha, dtype=np.float64),
            "scorer_sharpness": np.asarray(self.sharpness, dtype=np.float64),
            "scorer_none_utterances": _or(self.none_utterances, empty),
            "scorer_none_starts": self.none_starts,
            "scorer_negatives": _or(self.negatives, empty),
            "scorer_negative_routes": self.negative_routes,
            "scorer_blocks": self.blocks,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Scorer:
        """Rebuild a scorer saved with :meth:`to_arrays` (indexes built before none routes,
        negatives or blocks existed load with none of them: one head)."""
        missing = [key for key in _ARRAY_KEYS if key not in arrays]
        if missing:
            raise IndexError_(
                f"the index has no scorer arrays {missing}: rebuild with `intent-router build`"
            )

        def optional(key: str, dtype: type) -> np.ndarray | None:
            return np.asarray(arrays[key], dtype=dtype) if key in arrays else None

        return cls(
            utterances=np.asarray(arrays["scorer_utterances"], dtype=np.float32),
            starts=np.asarray(arrays["scorer_starts"], dtype=np.int64),
            weights=np.asarray(arrays["scorer_weights"], dtype=np.float32),
            bias=np.asarray(arrays["scorer_bias"], dtype=np.float32),
            alpha=float(arrays["scorer_alpha"]),
            sharpness=float(arrays["scorer_sharpness"]),
            none_utterances=optional("scorer_none_utterances", np.float32),
            none_starts=_or(optional("scorer_none_starts", np.int64), _EMPTY_STARTS),
            negatives=optional("scorer_negatives", np.float32),
            negative_routes=_or(optional("scorer_negative_routes", np.int64), _EMPTY_STARTS),
            blocks=_or(optional("scorer_blocks", np.int64), _EMPTY_STARTS),
        )


def _or(value: np.ndarray | None, default: np.ndarray) -> np.ndarray:
    return default if value is None else value


def fit(
    embeddings: FloatArray,
    labels: Sequence[int] | npt.NDArray[np.integer],
    n_routes: int,
    *,
    none: Examples | None = None,
    negatives: Examples | None = None,
    l2_penalty: float = L2_PENALTY,
    iterations: int = ITERATIONS,
    learning_rate: float = LEARNING_RATE,
    alpha: float | None = None,
    sharpness: float | None = None,
    none_weight: float | None = None,
    blocks: Sequence[int] | None = None,
) -> Scorer:
    """Group utterance ``embeddings`` by route index and fit the linear head on them.

    ``none`` (labels = none-route index) adds a none class to the head, each utterance
    weighted ``none_weight`` (default: :func:`none_class_weight`); ``negatives``
    (labels = route index) are kept for repulsion. ``alpha``/``sharpness`` default to
    :data:`ALPHA`/:data:`SHARPNESS`, or :data:`NONE_ALPHA`/:data:`NONE_SHARPNESS` with a
    none class. ``blocks`` (boundaries ``[0, ..., d]``, a hybrid encoder's) fits one head
    per block, each on its block's columns of the rows that fill it, as if that block's
    encoder were the only one (``embedding/hybrid.py``).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    order, starts = _group(x, y, n_routes, "route")
    with_none = none is not None and len(none.vectors) > 0
    bounds = np.asarray(blocks if blocks is not None else [0, x.shape[1]], dtype=np.int64)
    none_x: FloatArray = np.zeros((0, x.shape[1]), dtype=np.float32)
    none_utterances, none_starts = None, _EMPTY_STARTS
    if with_none:
        assert none is not None
        n_none = int(none.labels.max()) + 1
        none_order, none_starts = _group(none.vectors, none.labels, n_none, "none route")
        none_utterances = np.ascontiguousarray(none.vectors[none_order])
        none_x = np.asarray(none.vectors, dtype=np.float32)
    classes = n_routes + (1 if with_none else 0)
    weights = np.zeros((x.shape[1], classes), dtype=np.float32)
    bias = np.zeros((len(bounds) - 1, classes), dtype=np.float32)
    for block, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        rows, none_rows = _filled(x[:, lo:hi]), _filled(none_x[:, lo:hi])
        head_x = np.concatenate([x[rows, lo:hi], none_x[none_rows, lo:hi]])
        head_y = np.concatenate([y[rows], np.full(int(none_rows.sum()), n_routes)])
        sample_weight = np.ones(len(head_y), dtype=np.float32)
        if with_none:
            n_rows, n_none = int(rows.sum()), int(none_rows.sum())
            sample_weight[n_rows:] = none_weight or none_class_weight(n_rows, n_routes, n_none)
        weights[lo:hi], bias[block] = _fit_head(
            head_x, head_y, sample_weight, classes, l2_penalty, iterations, learning_rate
        )
    neg_vectors, neg_routes = None, _EMPTY_STARTS
    if negatives is not None and len(negatives.vectors):
        if negatives.labels.min() < 0 or negatives.labels.max() >= n_routes:
            raise ConfigError(f"negative labels must lie in [0, {n_routes})", field="negatives")
        neg_vectors = np.asarray(negatives.vectors, dtype=np.float32)
        neg_routes = np.asarray(negatives.labels, dtype=np.int64)
    return Scorer(
        np.ascontiguousarray(x[order]),
        starts,
        weights,
        bias,
        alpha=alpha if alpha is not None else (NONE_ALPHA if with_none else ALPHA),
        sharpness=sharpness
        if sharpness is not None
        else (NONE_SHARPNESS if with_none else SHARPNESS),
        none_utterances=none_utterances,
        none_starts=none_starts,
        negatives=neg_vectors,
        negative_routes=neg_routes,
        blocks=bounds if blocks is not None else _EMPTY_STARTS,
    )


def _filled(columns: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows with anything in ``columns`` (a hybrid utterance fills every block)."""
    filled: npt.NDArray[np.bool_] = np.abs(columns).sum(axis=1) > 0
    return filled


def default_threshold(encoder_default: float, *, has_none: bool) -> float:
    """The threshold when none was fitted: the encoder's own (MiniLM's is
    :data:`DEFAULT_THRESHOLD`), moved down by as much as a none class moves MiniLM's
    (:data:`NONE_DEFAULT_THRESHOLD`): a none class weighs the head more (``NONE_ALPHA``), so
    scores sit lower and the none route, not the threshold, does most of the refusing."""
    if not has_none:
        return encoder_default
    return encoder_default - (DEFAULT_THRESHOLD - NONE_DEFAULT_THRESHOLD)


def none_class_weight(n_utterances: int, n_routes: int, n_none: int) -> float:
    """Per-utterance weight of the none class (a route utterance weighs 1): the class as
    heavy as :data:`NONE_WEIGHT` average routes, capped at :data:`NONE_SHARE_MAX` of all
    route utterances. CLINC150 (15,000 utterances, 150 routes, 100 none): 5.0."""
    mass = min(NONE_WEIGHT * n_utterances / n_routes, NONE_SHARE_MAX * n_utterances)
    return float(mass / n_none)


def _group(x: FloatArray, y: IntArray, n: int, what: str) -> tuple[IntArray, IntArray]:
    """The stable order grouping rows by label, and each label's first row in that order."""
    if x.ndim != 2 or len(x) != len(y):
        raise ConfigError(f"expected (n, d) embeddings and n labels, got {x.shape} and {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= n):
        raise ConfigError(f"{what} labels must lie in [0, {n})", field="labels")
    counts = np.bincount(y, minlength=n)
    if n < 1 or np.any(counts == 0):
        empty = np.flatnonzero(counts == 0).tolist()
        raise ConfigError(f"every {what} needs at least one utterance; empty: {empty}")
    order = np.argsort(y, kind="stable").astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return order, starts


def _fit_head(
    x: FloatArray,
    y: IntArray,
    sample_weight: FloatArray,
    n_classes: int,
    l2_penalty: float,
    iterations: int,
    rate: float,
) -> tuple[FloatArray, FloatArray]:
    """Weighted multinomial logistic regression, full-batch Adam from zeros, centred inputs."""
    n, d = x.shape
    weights = np.zeros((d, n_classes), dtype=np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)
    if n_classes == 1:
        return weights, bias
    mean = x.mean(axis=0)
    xc = x - mean
    onehot = np.zeros((n, n_classes), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0
    row_weight = (sample_weight / sample_weight.sum()).astype(np.float32)[:, None]
    m_w, v_w = np.zeros_like(weights), np.zeros_like(weights)
    m_b, v_b = np.zeros_like(bias), np.zeros_like(bias)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, iterations + 1):
        probs = np.exp(_log_softmax(xc @ weights + bias))
        grad = (probs - onehot) * row_weight
        g_w = xc.T @ grad + np.float32(l2_penalty) * weights
        g_b = grad.sum(axis=0)
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        step_size = np.float32(rate * np.sqrt(1 - beta2**step) / (1 - beta1**step))
        weights -= step_size * m_w / (np.sqrt(v_w) + eps)
        bias -= step_size * m_b / (np.sqrt(v_b) + eps)
    return weights, (bias - mean @ weights).astype(np.float32)


def _log_softmax(logits: FloatArray) -> FloatArray:
    shifted: FloatArray = logits - logits.max(axis=1, keepdims=True)
    result: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result.astype(np.float32)
