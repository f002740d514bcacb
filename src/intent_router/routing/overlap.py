"""Overlapping routes: utterances nearer to another route than to their own.

An utterance whose nearest neighbour (among all other utterances) belongs to a different
route sits in that route's territory: a query like it may go either way. ``build`` lists
such utterances, worst first (the largest gap between the other route's nearest
utterance and the own route's), so a route author sees which pairs of routes overlap and
which utterances to move, reword or turn into ``negatives``. ``kind: none`` routes take
part as neighbours: a route utterance nearer to a none-route example than to its own route
is listed (none-route utterances themselves are not checked: they are diverse by design).
Routes with a single utterance have no "own" neighbour and are not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

TOP_OVERLAPS = 20
_BLOCK = 1024


@dataclass(frozen=True)
class Overlap:
    route: str
    utterance: str
    own_similarity: float  # cosine to its nearest utterance of its own route
    other_route: str
    other_utterance: str
    other_similarity: float  # cosine to the nearest utterance of the other route

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "utterance": self.utterance,
            "own_similarity": round(self.own_similarity, 4),
            "other_route": self.other_route,
            "other_utterance": self.other_utterance,
            "other_similarity": round(self.other_similarity, 4),
        }

    def __str__(self) -> str:
        return (
            f"{self.route}: {self.utterance!r} is nearer to {self.other_route} "
            f"({self.other_utterance!r}, cos {self.other_similarity:.3f}) than to its own "
            f"route (cos {self.own_similarity:.3f})"
        )


@dataclass(frozen=True)
class OverlapReport:
    count: int  # utterances nearer to another route than to their own
    pairs: list[tuple[str, str, int]]  # (route, other route, utterances), most first
    top: list[Overlap]  # the worst ones, at most TOP_OVERLAPS

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "pairs": [
                {"route": a, "other_route": b, "utterances": n}
                for a, b, n in self.pairs[:TOP_OVERLAPS]
            ],
            "top": [o.to_dict() for o in self.top],
        }


def find_overlaps(
    vectors: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    names: Sequence[str],
    texts: Sequence[str],
    *,
    limit: int = TOP_OVERLAPS,
    checked: int | None = None,
) -> OverlapReport:
    """Utterances (rows of ``vectors``, route ``labels`` into ``names``) nearer to another
    route than to their own; blockwise, so memory stays O(block x n). With ``checked``,
    only utterances of the routes with labels below it are checked (all are neighbours)."""
    n = len(vectors)
    sizes = np.bincount(labels, minlength=len(names)) if n else np.zeros(len(names), int)
    found: list[tuple[float, int, int, float, float]] = []  # gap, row, other row, own, other
    for start in range(0, n, _BLOCK):
        rows = np.arange(start, min(start + _BLOCK, n))
        sims = vectors[rows] @ vectors.T
        sims[np.arange(len(rows)), rows] = -np.inf  # not its own neighbour
        same = labels[rows][:, None] == labels[None, :]
        own = np.where(same, sims, -np.inf).max(axis=1)
        other_sims = np.where(same, -np.inf, sims)
        other_row = other_sims.argmax(axis=1)
        other = other_sims[np.arange(len(rows)), other_row]
        hits = (other > own) & (sizes[labels[rows]] > 1)
        if checked is not None:
            hits &= labels[rows] < checked
        for i in np.flatnonzero(hits):
            found.append(
                (float(other[i] - own[i]), int(rows[i]), int(other_row[i]), own[i], other[i])
            )
    found.sort(key=lambda item: -item[0])
    pairs = Counter((names[labels[r]], names[labels[o]]) for _, r, o, _, _ in found)
    top = [
        Overlap(
            route=names[labels[r]],
            utterance=texts[r],
            own_similarity=float(own_sim),
            other_route=names[labels[o]],
            other_utterance=texts[o],
            other_similarity=float(other_sim),
        )
        for _, r, o, own_sim, other_sim in found[:limit]
    ]
    return OverlapReport(
        count=len(found),
        pairs=[(a, b, count) for (a, b), count in pairs.most_common()],
        top=top,
    )
