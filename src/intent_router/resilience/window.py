"""A time-based sliding window of counters, as an immutable value.

The window is ``span_s`` long and cut into ``n`` buckets (resilience4j's time-based
sliding window): adding moves the window forward, totals sum the buckets still inside
it. It is a frozen value so a breaker record holding one can live in any storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Counts = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """Buckets of ``(bucket index, counts)``; the bucket index is ``floor(t / width)``."""

    buckets: tuple[tuple[int, Counts], ...] = ()

    def add(self, now: float, counts: Counts, *, span_s: float, n: int = 10) -> Window:
        """This window with ``counts`` added at time ``now`` (old buckets dropped)."""
        width = span_s / n
        index = math.floor(now / width)
        kept = [(i, c) for i, c in self.buckets if i > index - n]
        if kept and kept[-1][0] == index:
            i, c = kept[-1]
            kept[-1] = (i, tuple(a + b for a, b in zip(c, counts, strict=True)))
        else:
            kept.append((index, counts))
        return Window(tuple(kept))

    def totals(self, now: float, *, span_s: float, n: int = 10, width: int) -> Counts:
        """The summed counts of the buckets inside the window at ``now`` (``width`` fields)."""
        index = math.floor(now / (span_s / n))
        sums = [0] * width
        for i, counts in self.buckets:
            if i > index - n:
                for k, value in enumerate(counts):
                    sums[k] += value
        return tuple(sums)
