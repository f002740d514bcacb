"""The panic trickle (Envoy's panic threshold idea): never refuse everything.

When every model of a chain is unavailable (breakers open, cooling down after 429s) the
dispatcher does not answer 503 to all: a token bucket per model (``rate_per_s``, at most
``burst`` at once) lets a trickle of requests through to the *least bad* model — the
lowest recent failure rate, then the earliest time it would be available again — so some
answers flow and recovery is seen before the cool-downs end. The clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """An unavailable model that could take a panic call."""

    name: str
    failure_rate: float
    available_at: float


def least_bad(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate with the lowest failure rate, then the earliest availability."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c.failure_rate, c.available_at))


class PanicValve:
    """A token bucket per model bounding the calls let through in panic."""

    def __init__(
        self,
        *,
        rate_per_s: float = 1.0,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self.let_through = 0

    def take(self, name: str) -> bool:
        """One token for ``name`` if the bucket has one (never when ``rate_per_s`` is 0)."""
        if self.rate_per_s <= 0:
            return False
        now = self.clock()
        tokens, at = self._buckets.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[name] = (tokens, now)
            return False
        self._buckets[name] = (tokens - 1.0, now)
        self.let_through += 1
        return True
