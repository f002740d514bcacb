"""429 as back-pressure: a model that answered 429 cools down; it is not sick.

A 429 puts the model on cool-down for the upstream's ``Retry-After`` (capped at
``max_s``) or, without one, for a short default that doubles with every further 429
while no call succeeds (``default_s``, ``2·default_s`` … up to ``max_s``): a random 429
costs a fraction of a second, a real rate limit backs off quickly. A success resets the
doubling. The breaker is not told: back-pressure is not a failure. The clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class _Cooling:
    until: float = 0.0
    since: float = float("-inf")  # when the current cool-down began
    streak: int = 0  # 429s without Retry-After since the last success


class Cooldowns:
    """Per-model cool-down deadlines after 429s."""

    def __init__(
        self,
        *,
        default_s: float = 0.25,
        max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_s = default_s
        self.max_s = max_s
        self.clock = clock
        self._models: dict[str, _Cooling] = {}

    def cool(
        self, name: str, retry_after: float | None, *, started_at: float | None = None
    ) -> float:
        """Start (or extend) ``name``'s cool-down after a 429; return the seconds it has left.

        ``started_at`` is when the refused call began: a call already in flight when the
        current cool-down began belongs to the same burst and changes nothing (64 calls
        refused at once are one signal, not 64 reasons to double the wait).
        """
        entry = self._models.setdefault(name, _Cooling())
        now = self.clock()
        if started_at is not None and started_at < entry.since and entry.until > now:
            return entry.until - now
        if retry_after is not None:
            seconds = min(max(retry_after, 0.0), self.max_s)
        else:
            seconds = min(self.default_s * 2**entry.streak, self.max_s)
            entry.streak = min(entry.streak + 1, 30)
        entry.since = now
        entry.until = max(entry.until, now + seconds)
        return entry.until - now

    def succeeded(self, name: str) -> None:
        entry = self._models.get(name)
        if entry is not None:
            entry.streak = 0

    def until(self, name: str) -> float:
        """When ``name`` may be called again (in the past when it is not cooling)."""
        entry = self._models.get(name)
        return entry.until if entry is not None else 0.0

    def adopt(self, other: Cooldowns, names: Iterable[str]) -> None:
        """Share ``other``'s cool-downs of ``names`` (a reload keeps unchanged models')."""
        for name in names:
            if name in other._models:
                self._models[name] = other._models[name]

    def remaining(self, name: str) -> float:
        return max(0.0, self.until(name) - self.clock())
