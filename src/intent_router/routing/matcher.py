"""Turn query vectors into routing decisions: score every route, apply its threshold.

A query gets no route, and the decision says why (``reason``):

* ``none_route`` — it lands among the utterances of a ``kind: none`` route: the none
  class scores at least as high as the best route (``none_route`` / ``none_score`` say
  which and how much);
* ``negatives`` — every route was refused by its own negatives;
* ``below_threshold`` — the best route that its negatives do not refuse scores below
  its threshold.

Otherwise the reason is ``matched``. A route refused by a negative (the query is nearer to
one of its ``negatives`` than to any of its utterances) is skipped in favour of the next
candidate and listed in ``repelled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from intent_router.embedding.encoder import Vectors
from intent_router.embedding.index import BlockThresholds, RouteIndex
from intent_router.routing import scoring
from intent_router.routing.loader import RouteSet

TOP_CANDIDATES = 5

MATCHED = "matched"
BELOW_THRESHOLD = "below_threshold"
NONE_ROUTE = "none_route"
NEGATIVES = "negatives"


@dataclass(frozen=True)
class Candidate:
    route: str
    score: float


@dataclass(frozen=True)
class Decision:
    """The answer for one query: a route, or ``None`` (out of scope, default chain)."""

    route: str | None
    score: float
    threshold: float
    candidates: list[Candidate]
    chain: list[str] = field(default_factory=list)
    reason: str = MATCHED
    none_route: str | None = None
    none_score: float | None = None
    repelled: list[str] = field(default_factory=list)
    encoder: str | None = None
    """The encoder whose vector decided (the hybrid encoder picks one by language)."""
    lang: str | None = None
    """The query's language, when the encoder identifies it (the hybrid encoder does)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "candidates": [{"route": c.route, "score": round(c.score, 6)} for c in self.candidates],
            "chain": list(self.chain),
            "reason": self.reason,
            "none_route": self.none_route,
            "none_score": None if self.none_score is None else round(self.none_score, 6),
            "repelled": list(self.repelled),
            "encoder": self.encoder,
            "lang": self.lang,
        }


@dataclass(frozen=True)
class Assessment:
    """Everything :meth:`Matcher.decide` reads, for a batch of queries (also used by `fit`)."""

    scores: npt.NDArray[np.float32]  # (m, n_routes)
    repelled: npt.NDArray[np.bool_]  # (m, n_routes)
    best: npt.NDArray[np.int64]  # (m,) best route not refused by its negatives
    best_score: npt.NDArray[np.float32]  # (m,) its score
    none_score: npt.NDArray[np.float32]  # (m,) -inf without none routes
    none_route: npt.NDArray[np.int64]  # (m,)
    none_wins: npt.NDArray[np.bool_]  # (m,)
    all_repelled: npt.NDArray[np.bool_]  # (m,)
    block: npt.NDArray[np.int64]  # (m,) the block of the vector each query fills

    @property
    def refused(self) -> npt.NDArray[np.bool_]:
        """Rows refused whatever the threshold."""
        out: npt.NDArray[np.bool_] = self.none_wins | self.all_repelled
        return out


class Matcher:
    """Scores queries against the routes of a built index.

    A route's threshold is, by precedence: its YAML ``threshold``, then a per-route
    threshold fitted by ``intent-router fit``, then the fitted global one, then
    the default threshold of the index's encoder, recorded in its manifest (lower with
    none routes: :func:`scoring.default_threshold`). A hybrid encoder's index has one
    set per block (encoder): a query is held to the thresholds of the block it fills,
    except a route's YAML ``threshold``, which holds for every block.
    """

    def __init__(
        self, routes: RouteSet, index: RouteIndex, *, default_chain: list[str] | None = None
    ) -> None:
        self.names = index.route_names
        self.none_names = [r["name"] for r in index.manifest.get("none_routes", [])]
        self.scorer = scoring.Scorer.from_arrays(index.scorer_arrays)
        self.default_chain = list(default_chain or [])
        self.thresholds = np.array(
            [
                [
                    _first(routes.get(name).threshold, per_route.get(name), base)
                    for name in self.names
                ]
                for base, per_route in _block_thresholds(index, self.scorer.default_threshold)
            ],
            dtype=np.float32,
        )
        """(n_blocks, n_routes): a query is held to the row of the block it fills."""
        self.chains = [routes.get(name).baseline_chain for name in self.names]

    def scores(self, vectors: Vectors) -> np.ndarray:
        return np.asarray(self.scorer.scores(vectors), dtype=np.float32)

    def assess(self, vectors: Vectors) -> Assessment:
        scores = self.scores(vectors)
        repelled = self.scorer.repelled(vectors)
        admissible = np.where(repelled, -np.inf, scores)
        best = admissible.argmax(axis=1).astype(np.int64)
        best_score = admissible[np.arange(len(best)), best].astype(np.float32)
        none_score, none_route = self.scorer.none_scores(vectors)
        all_repelled: npt.NDArray[np.bool_] = np.asarray(repelled.all(axis=1), dtype=bool)
        return Assessment(
            scores=scores,
            repelled=repelled,
            best=best,
            best_score=best_score,
            none_score=none_score,
            none_route=none_route,
            none_wins=~all_repelled & (none_score >= best_score - scoring.NONE_MARGIN),
            all_repelled=all_repelled,
            block=self.scorer.block_of(vectors),
        )

    def decide(self, vectors: Vectors) -> list[Decision]:
        """One decision per row of ``vectors`` (L2-normalised query embeddings)."""
        if len(vectors) == 0:
            return []
        a = self.assess(vectors)
        k = min(TOP_CANDIDATES, a.scores.shape[1])
        top = np.argsort(-a.scores, axis=1)[:, :k]
        return [self._decision(a, row, order) for row, order in enumerate(top)]

    def _decision(self, a: Assessment, row: int, order: np.ndarray) -> Decision:
        best = int(a.best[row])
        threshold = float(self.thresholds[a.block[row], best])
        if a.all_repelled[row]:
            score, reason = float(a.scores[row].max()), NEGATIVES
        else:
            score = float(a.best_score[row])
            if a.none_wins[row]:
                reason = NONE_ROUTE
            else:
                reason = MATCHED if score >= threshold else BELOW_THRESHOLD
        matched = reason == MATCHED
        has_none = bool(self.none_names) and np.isfinite(a.none_score[row])
        return Decision(
            route=self.names[best] if matched else None,
            score=score,
            threshold=threshold,
            candidates=[Candidate(self.names[i], float(a.scores[row, i])) for i in order],
            chain=self.chains[best] if matched else self.default_chain,
            reason=reason,
            none_route=self.none_names[int(a.none_route[row])] if has_none else None,
            none_score=float(a.none_score[row]) if has_none else None,
            repelled=[self.names[i] for i in np.flatnonzero(a.repelled[row])],
        )


def _block_thresholds(index: RouteIndex, fallback: float) -> list[tuple[float, dict[str, float]]]:
    """Each block's global threshold (fitted, else its default) and fitted per-route ones;
    indexes built before blocks existed have one block."""
    fitted, scorer = index.thresholds, index.manifest["scorer"]
    blocks = scorer.get("blocks") or [{"default_threshold": scorer.get("default_threshold")}]
    out = []
    for position, block in enumerate(blocks):
        if position == 0:
            own = BlockThresholds(fitted.global_threshold, fitted.per_route)
        else:
            own = fitted.blocks.get(block["encoder"], BlockThresholds())
        default = block.get("default_threshold")
        base = _first(own.global_threshold, default, fallback)
        out.append((base, own.per_route))
    return out


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return float(value)
    raise ValueError("no threshold")
