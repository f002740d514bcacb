"""Per-model bulkheads: at most ``max_in_flight`` calls to one model at once.

A model at its cap is skipped by the chain walk (with that reason) rather than queued:
the next model answers instead of a queue forming behind a slow upstream. Streams hold
their slot until they end.
"""

from __future__ import annotations

from collections.abc import Mapping


class Bulkheads:
    """In-flight counters per model, with optional caps (None: no cap)."""

    def __init__(self, limits: Mapping[str, int | None]) -> None:
        self.limits = dict(limits)
        self._in_flight: dict[str, int] = {}
        self.rejected: dict[str, int] = {}

    def try_acquire(self, name: str) -> bool:
        limit = self.limits.get(name)
        current = self._in_flight.get(name, 0)
        if limit is not None and current >= limit:
            self.rejected[name] = self.rejected.get(name, 0) + 1
            return False
        self._in_flight[name] = current + 1
        return True

    def release(self, name: str) -> None:
        self._in_flight[name] = max(0, self._in_flight.get(name, 0) - 1)

    def share_counts(self, other: Bulkheads) -> None:
        """Count calls in flight together with ``other`` (the bulkheads of the configuration a
        reload replaced): its calls still running hold their slots and release them here."""
        self._in_flight = other._in_flight

    def in_flight(self, name: str) -> int:
        return self._in_flight.get(name, 0)
