"""What the cache stores and what a lookup returns."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

HitKind = Literal["exact", "semantic", "stale"]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached answer.

    ``key`` is the exact key (scope + normalised question), ``scope`` the scope digest and
    ``text`` the question as first asked. The entry is served as fresh until
    ``fresh_until`` and kept (servable as stale) until ``keep_until``; times are Unix
    seconds from the backend's clock.
    """

    key: str
    scope: str
    text: str
    created_at: float
    fresh_until: float
    keep_until: float
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> CacheEntry:
        data = json.loads(raw)
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A neighbour found by the vector tier, before verification."""

    key: str
    text: str
    similarity: float


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A served answer: the payload, how it was found and how old it is."""

    payload: dict[str, Any]
    kind: HitKind
    similarity: float
    age_s: float
    cached_query: str
