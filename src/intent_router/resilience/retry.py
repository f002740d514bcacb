"""Backoff strategies (tenacity-style) and the retry-delay rule.

A :class:`Backoff` maps the retry number (1 for the first retry) to seconds to wait.
:func:`retry_delay` adds the two rules the dispatcher needs: an upstream's
``Retry-After`` wins over the strategy, and a wait that would not leave time for
another try before the deadline means "give up on this model" (``None``).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod


class Backoff(ABC):
    """How long to wait before retry number ``n`` (1-based)."""

    @abstractmethod
    def delay(self, retry_number: int) -> float: ...


class ExponentialJitter(Backoff):
    """Exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**(n-1)))``."""

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 8.0,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if base_s < 0 or cap_s < 0:
            raise ValueError("base_s and cap_s must be >= 0")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng if rng is not None else random.Random()

    def ceiling(self, retry_number: int) -> float:
        exponent = min(max(retry_number - 1, 0), 62)
        return float(min(self.cap_s, self.base_s * 2**exponent))

    def delay(self, retry_number: int) -> float:
        return self._rng.uniform(0.0, self.ceiling(retry_number))


class FixedBackoff(Backoff):
    """The same wait before every retry (0 for none)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def delay(self, retry_number: int) -> float:
        return self.seconds


def retry_delay(
    backoff: Backoff,
    retry_number: int,
    *,
    retry_after: float | None,
    remaining_s: float,
) -> float | None:
    """Seconds to sleep before retry ``retry_number``, or None to stop retrying.

    ``Retry-After`` (already parsed to seconds) is honoured as given; otherwise the
    backoff strategy decides. If the wait would reach the remaining deadline there is
    no time left for the retry itself, so the caller should move to the next model.
    """
    wait = max(0.0, retry_after) if retry_after is not None else backoff.delay(retry_number)
    if wait >= remaining_s:
        return None
    return wait
