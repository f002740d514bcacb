"""The learned cache verifier: hard vetoes, then a small logistic model on pair evidence.

The rule verifier (:mod:`intent_router.cache.verify`) never lies but misses most real
rewordings ("How can I lose weight fast?" / "What is the fastest way to lose weight?"):
any plain-word edit beyond a tiny budget rejects. :class:`ModelVerifier` keeps the rules
that must always hold as vetoes (:func:`~intent_router.cache.evidence.veto`: numbers,
negation, word order, names and symbols, neighbour order) and lets a logistic model judge
the rest from :mod:`~intent_router.cache.evidence` (the rule alignment plus the encoder's
contextual word vectors), accepting when its score reaches the shipped threshold.

The weights ship in the package (``verifier_weights.json``, under 1 KB): feature
names, coefficients, intercept, threshold, format version and provenance. They are fitted by
``scripts/fit_verifier.py`` (grouped cross-validation on QQP and PAWS dev; the threshold is
chosen on training folds only); see ``scripts/data/README.md`` for the sweep.

Cost: one forward pass of the encoder over the two short texts, only for a candidate that
passed the cosine threshold and the vetoes (a few milliseconds on one core).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from intent_router.cache import evidence
from intent_router.cache.verify import Pair, Verdict, Verifier
from intent_router.embedding.words import WordVectors
from intent_router.errors import ConfigError

FORMAT: Final = "intent-router-verifier/1"
WEIGHTS_FILE: Final = "verifier_weights.json"

WordEmbedder = Callable[[Sequence[str]], list[WordVectors]]
"""Texts -> their word vectors (``Encoder.word_vectors``)."""


@dataclass(frozen=True, slots=True)
class PairModel:
    """Logistic weights over :data:`~intent_router.cache.evidence.FEATURES`."""

    coef: tuple[float, ...]
    intercept: float
    threshold: float
    """Accept when the decision value (``coef . x + intercept``) is at least this."""
    version: str
    meta: dict[str, Any]

    def score(self, x: Sequence[float]) -> float:
        return self.intercept + math.fsum(c * v for c, v in zip(self.coef, x, strict=True))

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "features": list(evidence.FEATURES),
                "coef": [round(c, 6) for c in self.coef],
                "intercept": round(self.intercept, 6),
                "threshold": round(self.threshold, 6),
                "meta": self.meta,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, where: str = WEIGHTS_FILE) -> PairModel:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
            if tuple(data["features"]) != evidence.FEATURES:
                raise ValueError(f"features {data['features']} differ from {evidence.FEATURES}")
            coef = tuple(float(c) for c in data["coef"])
            if len(coef) != len(evidence.FEATURES):
                raise ValueError(f"{len(coef)} coefficients for {len(evidence.FEATURES)} features")
            return cls(
                coef=coef,
                intercept=float(data["intercept"]),
                threshold=float(data["threshold"]),
                version=str(data["version"]),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"verifier weights {where}: {exc}") from exc

    @classmethod
    def load(cls, path: Path | None = None) -> PairModel:
        """The given weights file, or the one shipped in the package."""
        if path is not None:
            return cls.from_json(path.read_text(encoding="utf-8"), str(path))
        shipped = resources.files("intent_router.cache").joinpath(WEIGHTS_FILE)
        return cls.from_json(shipped.read_text(encoding="utf-8"))


class ModelVerifier(Verifier):
    """Vetoes first (named after the rule), then the pair model (``failed="model"``)."""

    def __init__(self, embed_words: WordEmbedder, model: PairModel | None = None) -> None:
        super().__init__(())
        self.embed_words = embed_words
        self.model = model if model is not None else PairModel.load()

    def judge(self, query: str, cached: str) -> tuple[str | None, float | None]:
        """The veto that rejects the pair (and no score), or no veto and the model's score."""
        pair = Pair(query, cached)
        failed = evidence.veto(pair, query, cached)
        if failed is not None:
            return failed, None
        wq, wc = self.embed_words([query, cached])
        return None, self.model.score(evidence.features(query, cached, pair, wq, wc))

    def verify(self, query: str, cached: str) -> Verdict:
        failed, score = self.judge(query, cached)
        if failed is not None:
            return Verdict(ok=False, failed=failed)
        if score is None or score < self.model.threshold:
            return Verdict(ok=False, failed="model")
        return Verdict(ok=True)
