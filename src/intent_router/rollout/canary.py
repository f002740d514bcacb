"""Compare a canary variant with its baseline over a sliding window; say when to roll back.

Each variant of a route keeps one time-based sliding window (:class:`~intent_router
.resilience.window.Window`, the breaker's) of ``(requests, errors, latency buckets…)``.
The latency buckets are geometric (each edge 2^(1/4) ≈ 1.19 times the previous, 1 ms to
~7 min), so a p95 is read as the upper edge of the bucket holding the 95th percentile:
within 19 % of the exact figure, and the same rounding on both sides of a ratio.

The **baseline** is every non-canary variant of the route taken together. A verdict needs
``min_requests`` in the window on both sides; then the canary is rolled back when

* its error rate exceeds the baseline's by more than ``max_error_rate_delta``, or
* its p95 latency exceeds ``max_p95_ratio`` times the baseline's.

What an *error* is, is the caller's business (:mod:`intent_router.rollout.rollouts`
counts a canary model's failed attempt even when the fallback saved the request).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from intent_router.resilience.window import Window
from intent_router.rollout.policy import CanaryPolicy

BUCKET_RATIO = 2.0**0.25
FIRST_EDGE_S = 0.001
N_BUCKETS = 76  # the last edge is ~440 s; slower calls land in the last bucket
EDGES = tuple(FIRST_EDGE_S * BUCKET_RATIO**k for k in range(N_BUCKETS))
WIDTH = 2 + N_BUCKETS  # requests, errors, buckets


def bucket_of(seconds: float) -> int:
    """The index of the first edge >= ``seconds`` (the last bucket for anything slower)."""
    if seconds <= FIRST_EDGE_S:
        return 0
    k = math.ceil(math.log(seconds / FIRST_EDGE_S, BUCKET_RATIO) - 1e-9)
    return min(k, N_BUCKETS - 1)


@dataclass(frozen=True)
class Stats:
    """One side's figures over the window."""

    requests: int
    errors: int
    p95_s: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p95_ms": None if self.p95_s is None else round(self.p95_s * 1000, 1),
        }

    @classmethod
    def of(cls, counts: tuple[int, ...]) -> Stats:
        requests, errors, buckets = counts[0], counts[1], counts[2:]
        return cls(requests, errors, _p95(buckets, requests))


@dataclass(frozen=True)
class Verdict:
    """Why a canary is rolled back, with the figures that decided."""

    reason: str  # error_rate | p95
    canary: Stats
    baseline: Stats

    def describe(self) -> str:
        c, b = self.canary, self.baseline
        return (
            f"{self.reason}: canary error rate {c.error_rate:.3f} over {c.requests} requests "
            f"vs baseline {b.error_rate:.3f} over {b.requests}; p95 {_ms(c.p95_s)} vs "
            f"{_ms(b.p95_s)}"
        )


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def _p95(buckets: tuple[int, ...], total: int) -> float | None:
    if total <= 0:
        return None
    rank = math.ceil(0.95 * total)
    seen = 0
    for edge, count in zip(EDGES, buckets, strict=True):
        seen += count
        if seen >= rank:
            return edge
    return EDGES[-1]


class CanaryMonitor:
    """The windows of one route's variants; injected clock (seconds, monotonic)."""

    def __init__(self, policy: CanaryPolicy, *, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._windows: dict[str, Window] = {}

    def record(self, variant: str, *, error: bool, latency_s: float) -> None:
        counts = [0] * WIDTH
        counts[0], counts[1] = 1, int(error)
        counts[2 + bucket_of(latency_s)] = 1
        window = self._windows.get(variant, Window())
        self._windows[variant] = window.add(
            self._clock(), tuple(counts), span_s=self.policy.window_s
        )

    def stats(self, variants: Iterable[str]) -> Stats:
        """The figures of ``variants`` taken together, over the window ending now."""
        now, sums = self._clock(), [0] * WIDTH
        for name in variants:
            window = self._windows.get(name)
            if window is None:
                continue
            counts = window.totals(now, span_s=self.policy.window_s, width=WIDTH)
            sums = [a + b for a, b in zip(sums, counts, strict=True)]
        return Stats.of(tuple(sums))

    def verdict(self, canary: str, baseline: Iterable[str]) -> Verdict | None:
        """A :class:`Verdict` if ``canary`` is worse than the baseline by the margins."""
        c, b = self.stats([canary]), self.stats(baseline)
        need = self.policy.min_requests
        if c.requests < need or b.requests < need:
            return None
        if c.error_rate - b.error_rate > self.policy.max_error_rate_delta:
            return Verdict("error_rate", c, b)
        ratio = self.policy.max_p95_ratio
        if c.p95_s is not None and b.p95_s is not None and c.p95_s > ratio * b.p95_s:
            return Verdict("p95", c, b)
        return None
