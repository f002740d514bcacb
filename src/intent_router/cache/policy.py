"""Cache policy: global defaults, the per-route ``cache:`` mapping, and their merge.

A route file may carry::

    cache:
      enabled: true
      threshold: 0.90        # cosine a cached question must reach (then it is verified)
      ttl_s: 3600
      stale_if_error: true   # on dispatch failure, serve an expired or looser match
      stale_threshold: 0.85  # unset: threshold - 0.05
      stale_grace_s: 86400   # how long past ttl_s an entry may still be served as stale
      shared: false          # with API keys: share answers across teams and keys (see below)

With API keys on, a cached answer is served only within the tenant that stored it (its
team, else its key); ``shared: true`` lets every caller of the route read and write one
pool (e.g. a route answering public FAQs). Without keys every caller is one tenant.

Every key is optional; a missing key takes the global default. Unknown keys are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from intent_router.errors import ConfigError

DEFAULT_THRESHOLD = 0.90
"""Cosine floor for a semantic candidate; the verifier decides after it (see verify.py).

Chosen on half 0 of PAWS dev with the verifier on (false hits < 1%), then checked on half 1
and on the hand-written pairs (``scripts/bench_cache.py``). Lower thresholds barely add
paraphrase hits on PAWS (the verifier is the real gate) but admit more lookalikes."""

STALE_MARGIN = 0.05
DEFAULT_TTL_S = 3600.0
DEFAULT_STALE_GRACE_S = 86_400.0
DEFAULT_MAX_ENTRIES = 100_000


def _check_thresholds(threshold: float, stale_threshold: float) -> None:
    if stale_threshold > threshold:
        raise ValueError(
            f"stale_threshold {stale_threshold} is stricter than threshold {threshold}; "
            "the relaxed (stale) match must be the looser one"
        )


class CachePolicy(BaseModel):
    """The resolved policy of one route: every field set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0.0)
    stale_if_error: bool = False
    stale_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Cosine floor when dispatch failed; unset: ``threshold - 0.05``."""
    stale_grace_s: float = Field(default=DEFAULT_STALE_GRACE_S, ge=0.0)
    """How long after ``ttl_s`` an entry may still be served as stale (if stale_if_error)."""
    shared: bool = False
    """Serve answers across tenants (teams, keys); off: each tenant has its own entries."""

    @model_validator(mode="after")
    def _stale_is_looser(self) -> Self:
        if self.stale_threshold is not None:
            _check_thresholds(self.threshold, self.stale_threshold)
        return self

    @property
    def relaxed_threshold(self) -> float:
        """The cosine floor of a relaxed (stale-if-error) lookup."""
        if self.stale_threshold is not None:
            return self.stale_threshold
        return max(0.0, self.threshold - STALE_MARGIN)

    @property
    def keep_s(self) -> float:
        """How long a backend must keep an entry: fresh life plus the stale grace."""
        return self.ttl_s + (self.stale_grace_s if self.stale_if_error else 0.0)


class RouteCachePolicy(BaseModel):
    """The ``cache:`` mapping of a route file: the same keys, all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    ttl_s: float | None = Field(default=None, gt=0.0)
    stale_if_error: bool | None = None
    stale_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    stale_grace_s: float | None = Field(default=None, ge=0.0)
    shared: bool | None = None


class CacheDefaults(BaseModel):
    """Process-wide cache settings and the policy every route starts from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: CachePolicy = CachePolicy()
    max_entries: int = Field(default=DEFAULT_MAX_ENTRIES, ge=1)
    max_cacheable_temperature: float = Field(default=1.0, ge=0.0)
    """Responses sampled hotter than this are not stored (see :func:`rules.skip_reason`)."""
    max_payload_bytes: int = Field(default=256_000, ge=1)
    """A serialised response larger than this is not stored."""
    verify: bool = True
    """Run the verifier on semantic candidates. Turning it off lets the cache lie."""
    candidates: int = Field(default=4, ge=1, le=64)
    """How many nearest neighbours above the threshold are offered to the verifier."""


def resolve_policy(
    route_cache: RouteCachePolicy | Mapping[str, Any] | None, defaults: CacheDefaults
) -> CachePolicy:
    """Merge a route's ``cache:`` mapping over the defaults.

    Raises :class:`ConfigError` (``field`` names the key, e.g. ``cache.threshold``) when
    the mapping is invalid; the route loader adds the file and line.
    """
    if route_cache is None:
        return defaults.policy
    try:
        override = (
            route_cache
            if isinstance(route_cache, RouteCachePolicy)
            else RouteCachePolicy.model_validate(dict(route_cache))
        )
        merged = defaults.policy.model_dump() | override.model_dump(exclude_none=True)
        return CachePolicy.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in ("cache", *first["loc"]))
        raise ConfigError(first["msg"], field=field) from exc
