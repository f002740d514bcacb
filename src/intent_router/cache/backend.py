"""The backend interface: where entries and their vectors live.

The facade (:class:`~intent_router.cache.store.ResponseCache`) decides *what* to serve; a
backend only stores, finds and forgets. Backends never raise on the request path when
their store is unreachable: they report a miss and say so in :attr:`CacheBackend.available`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from intent_router.cache.entry import CacheEntry, Candidate
from intent_router.cache.semantic import Vector


class CacheBackend(ABC):
    """Storage for cache entries: an exact map plus a vector tier per scope."""

    name: str = "backend"

    @property
    def available(self) -> bool:
        """False while the backing store cannot be reached (lookups miss, stores drop)."""
        return True

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work (e.g. mirror sync); called once before use."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and release connections."""

    @abstractmethod
    async def get(self, key: str) -> CacheEntry | None:
        """The entry stored under the exact ``key``, if present and not past ``keep_until``."""

    @abstractmethod
    async def nearest(
        self, scope: str, vector: Vector, k: int, min_similarity: float
    ) -> list[Candidate]:
        """Up to ``k`` stored questions of ``scope`` at or above ``min_similarity``, best first."""

    @abstractmethod
    async def put(self, entry: CacheEntry, vector: Vector) -> None:
        """Store ``entry`` (replacing one with the same key) and index its ``vector``."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Forget ``key`` everywhere."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counters for metrics: ``entries``, ``evictions``, ``expirations``, ``state`` …"""
