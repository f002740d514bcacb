"""What a route file may say about safe change: ``variants``, ``shadow`` and ``canary``.

::

    variants:                        # instead of `chain:`; weights are relative
      - {name: stable, chain: [strong-coder, cheap-general], weight: 90}
      - {name: next, chain: [new-coder], weight: 10, canary: true}
    shadow:                          # a sample of requests also goes to these, unserved
      models: [candidate-coder]
      sample: 0.1
      max_in_flight: 8               # shadow calls at once; beyond, a sample is dropped
      similarity: true               # embed both answers for their cosine (router CPU)
    canary:                          # the automatic rollback of `canary: true` variants
      window_s: 300
      min_requests: 20
      max_error_rate_delta: 0.05
      max_p95_ratio: 1.5

Every key is checked (unknown keys refused, like the rest of the route file); the models a
variant or shadow names are checked against the models file at start-up, like ``chain``.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

VariantName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.-]+$"),
]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

DEFAULT_WINDOW_S = 300.0
DEFAULT_MIN_REQUESTS = 20
DEFAULT_MAX_ERROR_RATE_DELTA = 0.05
DEFAULT_MAX_P95_RATIO = 1.5


class Variant(BaseModel):
    """One weighted chain of a route; a ``canary`` is watched and rolled back if worse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: VariantName
    chain: list[ModelName] = Field(min_length=1)
    weight: float = Field(ge=0.0)
    """Relative share of the route's traffic (any scale: 90/10 or 0.9/0.1)."""
    canary: bool = False


class ShadowPolicy(BaseModel):
    """Models that also receive a sample of the route's requests; their answers are never served."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[ModelName] = Field(min_length=1)
    sample: float = Field(ge=0.0, le=1.0)
    """Share of the route's answered requests mirrored to every shadow model."""
    max_in_flight: int = Field(default=8, ge=1)
    """Shadow calls of this route at once; a sampled request beyond it is dropped (counted)."""
    similarity: bool = True
    """Embed both answers to record their cosine (the router's encoder, so router CPU)."""

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len(set(self.models)) != len(self.models):
            raise ValueError("shadow.models lists a model twice")
        return self


class CanaryPolicy(BaseModel):
    """When a canary variant is rolled back (weight set to 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: float = Field(default=DEFAULT_WINDOW_S, gt=0.0)
    """Sliding window the canary and the baseline are compared over."""
    min_requests: int = Field(default=DEFAULT_MIN_REQUESTS, ge=1)
    """Requests the canary, and the baseline, must each have in the window before a verdict."""
    max_error_rate_delta: float = Field(default=DEFAULT_MAX_ERROR_RATE_DELTA, ge=0.0, le=1.0)
    """Rolled back when canary error rate - baseline error rate exceeds this."""
    max_p95_ratio: float = Field(default=DEFAULT_MAX_P95_RATIO, ge=1.0)
    """Rolled back when canary p95 latency / baseline p95 latency exceeds this."""


def check_variants(variants: list[Variant]) -> list[Variant]:
    """Names unique, some weight on a baseline (non-canary) variant; raises ValueError."""
    if not variants:
        return variants
    names = [v.name for v in variants]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"variant name {repeated[0]!r} is used twice")
    if not any(v.weight > 0 and not v.canary for v in variants):
        raise ValueError(
            "no baseline: at least one variant without `canary: true` needs a weight > 0 "
            "(a rolled-back canary's traffic goes to the baseline)"
        )
    return variants
