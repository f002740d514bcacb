"""Live traffic for the console: a fixed ring of time buckets and per-model latency samples.

Fed with one dict per finished request (``time``, ``endpoint``, ``route``, ``model``,
``latency_ms``, ``cache`` (tier or None), ``attempts`` (``[{"model", "outcome"}]``),
``cost_usd``). Memory is bounded whatever the traffic: ``buckets`` * ``bucket_s`` of
history (default 60 buckets of 10 s), the last ``samples`` latencies per model for percentiles, and
at most ``max_names`` routes and models (further names count as ``other``).
Not thread-safe by design: it is fed and read on the server's event loop.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OTHER = "other"
NONE = "none"


@dataclass
class _Bucket:
    index: int  # floor(time / bucket_s)
    by_route: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    fallbacks: int = 0
    errors: int = 0
    cost_usd: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.by_route.values())


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def fell_back(attempts: list[Mapping[str, Any]], model: str | None) -> bool:
    """True when the answer did not come from the chain's first model."""
    return bool(attempts) and model is not None and attempts[0].get("model") != model


class TrafficStats:
    """Requests by route over time, latency percentiles per model, cache, fallbacks, cost."""

    def __init__(
        self,
        *,
        bucket_s: float = 10.0,
        buckets: int = 60,
        samples: int = 1024,
        max_names: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_s = bucket_s
        self.clock = clock
        self.max_names = max_names
        self._ring: list[_Bucket | None] = [None] * buckets
        self._latency: dict[str, deque[float]] = {}
        self._samples = samples
        self._models: Counter[str] = Counter()
        self._cache: Counter[str] = Counter()
        self._cost_by_route: dict[str, float] = {}
        self._routes: set[str] = set()
        self.requests = 0
        self.fallbacks = 0
        self.errors = 0
        self.cost_usd = 0.0

    def _name(self, value: str | None, known: set[str] | Mapping[str, Any]) -> str:
        name = value or NONE
        if name in known or len(known) < self.max_names:
            return name
        return OTHER

    def _bucket(self, at: float) -> _Bucket:
        index = math.floor(at / self.bucket_s)
        slot = index % len(self._ring)
        bucket = self._ring[slot]
        if bucket is None or bucket.index != index:
            bucket = self._ring[slot] = _Bucket(index)
        return bucket

    def record(self, event: Mapping[str, Any]) -> None:
        at = float(event.get("time") or self.clock())
        route = self._name(event.get("route"), self._routes)
        self._routes.add(route)
        model = event.get("model")
        attempts = list(event.get("attempts") or [])
        cache = event.get("cache")
        cost = float(event.get("cost_usd") or 0.0)
        bucket = self._bucket(at)
        bucket.by_route[route] += 1
        self.requests += 1
        self._cache[cache or "miss"] += 1
        if cache:
            bucket.cache_hits += 1
        if fell_back(attempts, model):
            bucket.fallbacks += 1
            self.fallbacks += 1
        if model is None:
            bucket.errors += 1
            self.errors += 1
        bucket.cost_usd += cost
        self.cost_usd += cost
        self._cost_by_route[route] = self._cost_by_route.get(route, 0.0) + cost
        if model is not None and not cache:  # a cache hit says nothing about the model
            name = self._name(model, self._latency)
            samples = self._latency.setdefault(name, deque(maxlen=self._samples))
            samples.append(float(event.get("latency_ms") or 0.0))
            self._models[name] += 1

    def snapshot(self, breakers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Everything the console draws, as plain JSON: oldest bucket first."""
        now = self.clock()
        newest = math.floor(now / self.bucket_s)
        series = []
        for index in range(newest - len(self._ring) + 1, newest + 1):
            bucket = self._ring[index % len(self._ring)]
            if bucket is None or bucket.index != index:
                bucket = _Bucket(index)
            series.append(
                {
                    "start": index * self.bucket_s,
                    "requests": bucket.requests,
                    "by_route": dict(bucket.by_route),
                    "cache_hits": bucket.cache_hits,
                    "fallbacks": bucket.fallbacks,
                    "errors": bucket.errors,
                    "cost_usd": round(bucket.cost_usd, 8),
                }
            )
        latency = {}
        for model, samples in sorted(self._latency.items()):
            ordered = sorted(samples)
            latency[model] = {
                "count": self._models[model],
                "window": len(ordered),
                **{f"p{q}_ms": round(percentile(ordered, q), 2) for q in (50, 95, 99)},
            }
        hits = self.requests - self._cache["miss"]
        return {
            "now": now,
            "bucket_s": self.bucket_s,
            "routes": sorted(self._routes),
            "buckets": series,
            "latency": latency,
            "cache": dict(self._cache),
            "totals": {
                "requests": self.requests,
                "cache_hits": hits,
                "cache_hit_rate": round(hits / self.requests, 4) if self.requests else 0.0,
                "fallbacks": self.fallbacks,
                "errors": self.errors,
                "cost_usd": round(self.cost_usd, 8),
            },
            "cost_by_route": {k: round(v, 8) for k, v in sorted(self._cost_by_route.items())},
            "breakers": dict(breakers or {}),
        }


def event_from_log_line(line: Mapping[str, Any], at: float) -> dict[str, Any]:
    """The aggregator's event from the gateway's request log line (``cache`` "miss" → None)."""
    cache = line.get("cache")
    return {
        "time": at,
        "endpoint": line.get("endpoint"),
        "route": line.get("route"),
        "model": line.get("model"),
        "latency_ms": line.get("latency_ms"),
        "cache": None if cache in (None, "miss") else cache,
        "attempts": line.get("attempts") or [],
        "cost_usd": line.get("cost_usd") or 0.0,
    }
