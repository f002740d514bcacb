"""Turn query vectors into routing decisions: score every route, apply its threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intent_router.embedding.encoder import Vectors
from intent_router.embedding.index import RouteIndex
from intent_router.routing import scoring
from intent_router.routing.loader import RouteSet

TOP_CANDIDATES = 5


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
            "encoder": self.encoder,
            "lang": self.lang,
        }


class Matcher:
    """Scores queries against the routes of a built index.

    A route's threshold is, by precedence: its YAML ``threshold``, then a per-route
    threshold fitted by ``intent-router fit``, then the fitted global one, then
    the default threshold of the index's encoder (recorded in its manifest).
    """

    def __init__(
        self, routes: RouteSet, index: RouteIndex, *, default_chain: list[str] | None = None
    ) -> None:
        self.names = index.route_names
        self.scorer = scoring.Scorer.from_arrays(index.scorer_arrays)
        self.default_chain = list(default_chain or [])
        fitted = index.thresholds
        base = (
            fitted.global_threshold
            if fitted.global_threshold is not None
            else float(index.manifest["scorer"].get("default_threshold", scoring.DEFAULT_THRESHOLD))
        )
        self.thresholds = np.array(
            [
                _first(routes.get(name).threshold, fitted.per_route.get(name), base)
                for name in self.names
            ],
            dtype=np.float32,
        )
        self.chains = [list(routes.get(name).chain) for name in self.names]

    def scores(self, vectors: Vectors) -> np.ndarray:
        return np.asarray(self.scorer.scores(vectors), dtype=np.float32)

    def decide(self, vectors: Vectors) -> list[Decision]:
        """One decision per row of ``vectors`` (L2-normalised query embeddings)."""
        if len(vectors) == 0:
            return []
        all_scores = self.scores(vectors)
        k = min(TOP_CANDIDATES, all_scores.shape[1])
        top = np.argsort(-all_scores, axis=1)[:, :k]
        decisions = []
        for row, order in zip(all_scores, top, strict=True):
            best = int(order[0])
            score = float(row[best])
            threshold = float(self.thresholds[best])
            matched = score >= threshold
            decisions.append(
                Decision(
                    route=self.names[best] if matched else None,
                    score=score,
                    threshold=threshold,
                    candidates=[Candidate(self.names[i], float(row[i])) for i in order],
                    chain=self.chains[best] if matched else self.default_chain,
                )
            )
        return decisions


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return float(value)
    raise ValueError("no threshold")
