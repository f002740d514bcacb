"""Does the last turn of a conversation stay on the earlier turns' route, or move?

A small logistic model over evidence from the conversation's one encoder batch (the
joined text is its only addition) and the matcher's scores:

* how sure the last turn is on its own, read whole and by clauses (``last_margin``: its
  best score over its threshold), and whether its best route is the earlier turns' route
  (``last_agrees``);
* the same for the **novel part** of the last turn (``novel_margin``, ``novel_agrees``): its
  vector with the context direction projected out (:func:`novel_vector`), so "now summarize
  that story" is read without "story" pulling it back to the story's route;
* how well the last turn still fits the earlier route (``fit_to_context``: its score on the
  context route under its own best score) and its cosine to the context (``cosine``);
* the previous user turn and the last one embedded as one text (``joined_agrees``: its best
  route is the context's; ``joined_margin``: how far its best route scores over the
  context route);
* how strongly a ``kind: none`` route claims it (``none_claim``);
* how far the novel part's best route scores over the context route (``novel_over_context``),
  and its margin when that route is another one (``novel_elsewhere``);
* how sure the context is (``context_margin``);
* the shape of the turn: short and pointing back ("make it shorter", ``referential``),
  pointing back at any length (``points_back``), how many content words it brings that
  the earlier user turns did not have (``new_words``: a self-contained new question brings
  several, "and in ounces?" one), length (``log_words``).

The weights ship as ``turn_weights.json`` (under 1 KB), fitted by
``scripts/fit_turn_model.py`` on the ``train`` and ``dev`` chats of
``scripts/data/conversations.jsonl`` with cross-validation; see that script for the sweep.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from intent_router.errors import ConfigError
from intent_router.routing.matcher import Decision

WEIGHTS_FILE: Final = "turn_weights.json"

FEATURES: Final = (
    "last_margin",
    "last_agrees",
    "novel_margin",
    "novel_agrees",
    "novel_over_context",
    "novel_elsewhere",
    "fit_to_context",
    "cosine",
    "joined_agrees",
    "joined_margin",
    "none_claim",
    "context_margin",
    "referential",
    "points_back",
    "new_words",
    "log_words",
)

NOVELTY: Final = 0.8
"""How much of the context direction :func:`novel_vector` removes (1 = all of it)."""

CLIP: Final = 1.0


@dataclass(frozen=True)
class Evidence:
    """What the model reads for one conversation (all on the route-score scale)."""

    reading: Decision  # the last turn, whole or by its clearest clause
    novel: Decision  # its novel part
    joined: Decision  # the previous user turn and the last one embedded together
    context: Decision  # the earlier turns (has a route)
    last_scores: Mapping[str, float]  # every route's score for the last turn (whole text)
    cosine: float
    referential: bool
    points_back: bool  # a pointer word ("it", "that", a leading "and") at any length
    new_words: int  # content words of the last turn not in the earlier user turns
    words: int

    def features(self) -> dict[str, float]:
        route = self.context.route
        best = max(self.last_scores.values())
        none_claim = -CLIP
        if self.reading.none_score is not None:
            none_claim = _clip(self.reading.none_score - self.reading.score)
        return {
            "last_margin": _clip(self.reading.score - self.reading.threshold),
            "last_agrees": float(_top(self.reading) == route),
            "novel_margin": _clip(self.novel.score - self.novel.threshold),
            "novel_agrees": float(_top(self.novel) == route),
            "novel_over_context": _clip(self.novel.score - _score(self.novel, route)),
            "novel_elsewhere": _clip(self.novel.score - self.novel.threshold)
            * float(_top(self.novel) != route),
            "fit_to_context": _clip(self.last_scores.get(str(route), -CLIP) - best),
            "cosine": self.cosine,
            "joined_agrees": float(_top(self.joined) == route),
            "joined_margin": _clip(self.joined.score - _score(self.joined, route)),
            "none_claim": none_claim,
            "context_margin": _clip(self.context.score - self.context.threshold),
            "referential": float(self.referential),
            "points_back": float(self.points_back),
            "new_words": min(self.new_words, 5) / 5.0,
            "log_words": math.log1p(self.words) / 3.0,
        }


@dataclass(frozen=True)
class TurnModel:
    """``P(move) = sigmoid(bias + Σ weight·feature)``; moves at ``P ≥ threshold``."""

    weights: Mapping[str, float]
    bias: float
    threshold: float = 0.5

    def p_move(self, features: Mapping[str, float]) -> float:
        z = self.bias + sum(self.weights[name] * features[name] for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def to_json(self) -> dict[str, object]:
        return {"features": list(FEATURES), "weights": dict(self.weights),
                "bias": self.bias, "threshold": self.threshold}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, object], where: str) -> TurnModel:
        weights = data.get("weights")
        if not isinstance(weights, dict) or set(weights) != set(FEATURES):
            raise ConfigError(f"{where}: 'weights' must give exactly {', '.join(FEATURES)}")
        try:
            return cls(
                weights={k: float(weights[k]) for k in FEATURES},
                bias=float(data["bias"]),  # type: ignore[arg-type]
                threshold=float(data.get("threshold", 0.5)),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: bad turn model ({exc})") from exc

    @classmethod
    def load(cls, path: Path | None = None) -> TurnModel:
        """The shipped weights, or those in ``path``."""
        if path is not None:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        shipped = resources.files("intent_router.routing").joinpath(WEIGHTS_FILE)
        return cls.from_json(json.loads(shipped.read_text(encoding="utf-8")), WEIGHTS_FILE)


def novel_vector(
    last: npt.NDArray[np.float32], context: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``last`` with :data:`NOVELTY` of its component along ``context`` removed, L2-normalised."""
    rest = last - NOVELTY * float(last @ context) * context
    norm = float(np.linalg.norm(rest))
    out: npt.NDArray[np.float32] = (rest / norm if norm > 0 else last).astype(np.float32)
    return out


def route_scores(names: Sequence[str], scores: npt.NDArray[np.float32]) -> dict[str, float]:
    return {name: float(s) for name, s in zip(names, scores, strict=True)}


def _top(decision: Decision) -> str | None:
    return decision.candidates[0].route if decision.candidates else None


def _score(decision: Decision, route: str | None) -> float:
    """``decision``'s score for ``route`` (its lowest candidate's when not among them)."""
    scores = {c.route: c.score for c in decision.candidates}
    return scores.get(str(route), min(scores.values(), default=decision.score))


def _clip(value: float) -> float:
    return max(-CLIP, min(CLIP, float(value)))
