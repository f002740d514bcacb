"""Why a query goes where it goes: its score against every route and its nearest utterances.

Read-only and for people (the operator console); the request path uses :class:`Matcher`
alone. Same vectors, same scores: the explanation cannot disagree with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from intent_router.embedding.index import RouteIndex
from intent_router.routing.matcher import Decision, Matcher


@dataclass(frozen=True)
class RouteScore:
    route: str
    score: float
    threshold: float


@dataclass(frozen=True)
class Neighbour:
    text: str
    route: str
    cosine: float


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    scores: list[RouteScore]  # every route, best first
    nearest: list[Neighbour]  # the closest utterances of the index, best first

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.decision.to_dict(),
            "scores": [
                {
                    "route": s.route,
                    "score": round(s.score, 6),
                    "threshold": round(s.threshold, 6),
                    "matched": s.route == self.decision.route,
                }
                for s in self.scores
            ],
            "nearest": [
                {"text": n.text, "route": n.route, "cosine": round(n.cosine, 6)}
                for n in self.nearest
            ],
        }


def explain(
    matcher: Matcher, index: RouteIndex, vector: np.ndarray, decision: Decision, *, k: int = 8
) -> Explanation:
    """Scores of ``vector`` (an L2-normalised query embedding) and its ``k`` nearest utterances."""
    query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    row = matcher.scores(query)[0]
    thresholds = matcher.thresholds[int(matcher.scorer.block_of(query)[0])]
    scores = sorted(
        (
            RouteScore(name, float(row[i]), float(thresholds[i]))
            for i, name in enumerate(matcher.names)
        ),
        key=lambda s: -s.score,
    )
    cosines = index.vectors @ query[0] if len(index.vectors) else np.zeros(0, np.float32)
    top = np.argsort(-cosines)[:k]
    names = index.route_names
    nearest = [
        Neighbour(index.texts[i], names[int(index.labels[i])], float(cosines[i])) for i in top
    ]
    return Explanation(decision=decision, scores=scores, nearest=nearest)
