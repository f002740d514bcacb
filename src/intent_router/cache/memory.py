"""The in-process backend: the default, nothing to start.

:class:`LocalStore` is the bounded core (also used as the Redis backend's local mirror):
entries in LRU order, one :class:`VectorIndex` per scope, and a heap of expiry times so an
entry leaves both the map and the vector tier when it expires or is evicted. Memory is
bounded by ``max_entries`` whatever the traffic.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from intent_router.cache.backend import CacheBackend
from intent_router.cache.entry import CacheEntry, Candidate
from intent_router.cache.semantic import Vector, VectorIndex

Clock = Callable[[], float]


class LocalStore:
    """Bounded entries + per-scope vector indexes, synchronous (no I/O)."""

    def __init__(self, *, dim: int, max_entries: int, clock: Clock = time.time) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._indexes: dict[str, VectorIndex] = {}
        self._expiry: list[tuple[float, str]] = []
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def vectors(self) -> int:
        """Rows held by the vector tier (equals ``len(self)``; exposed for tests)."""
        return sum(len(index) for index in self._indexes.values())

    def clear(self) -> None:
        self._entries.clear()
        self._indexes.clear()
        self._expiry.clear()

    def put(self, entry: CacheEntry, vector: Vector) -> None:
        old = self._entries.get(entry.key)
        if old is not None and old.scope != entry.scope:
            self._unindex(old)
        self._entries[entry.key] = entry
        self._entries.move_to_end(entry.key)
        index = self._indexes.get(entry.scope)
        if index is None:
            index = self._indexes[entry.scope] = VectorIndex(self.dim)
        index.add(entry.key, vector)
        heapq.heappush(self._expiry, (entry.keep_until, entry.key))
        self._expire()
        while len(self._entries) > self.max_entries:
            _, oldest = self._entries.popitem(last=False)
            self._unindex(oldest)
            self.evictions += 1

    def get(self, key: str) -> CacheEntry | None:
        self._expire()
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def peek(self, key: str) -> CacheEntry | None:
        """The entry without touching its LRU position or expiring anything."""
        return self._entries.get(key)

    def nearest(self, scope: str, vector: Vector, k: int, min_similarity: float) -> list[Candidate]:
        self._expire()
        index = self._indexes.get(scope)
        if index is None:
            return []
        return [
            Candidate(key=key, text=self._entries[key].text, similarity=score)
            for key, score in index.search(vector, k, min_similarity)
        ]

    def delete(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._unindex(entry)

    def _unindex(self, entry: CacheEntry) -> None:
        index = self._indexes.get(entry.scope)
        if index is not None:
            index.remove(entry.key)
            if not len(index):
                del self._indexes[entry.scope]

    def _expire(self) -> None:
        now = self.clock()
        while self._expiry and self._expiry[0][0] <= now:
            _, key = heapq.heappop(self._expiry)
            entry = self._entries.get(key)
            if entry is not None and entry.keep_until <= now:
                del self._entries[key]
                self._unindex(entry)
                self.expirations += 1
        if len(self._expiry) > 4 * self.max_entries + 64:  # replaced entries leave stale rows
            self._expiry = [(e.keep_until, k) for k, e in self._entries.items()]
            heapq.heapify(self._expiry)


class MemoryBackend(CacheBackend):
    """Entries in this process only; lost on restart, not shared between replicas."""

    name = "memory"

    def __init__(self, *, dim: int = 384, max_entries: int = 100_000, clock: Clock = time.time):
        self.store = LocalStore(dim=dim, max_entries=max_entries, clock=clock)

    async def get(self, key: str) -> CacheEntry | None:
        return self.store.get(key)

    async def nearest(
        self, scope: str, vector: Vector, k: int, min_similarity: float
    ) -> list[Candidate]:
        return self.store.nearest(scope, vector, k, min_similarity)

    async def put(self, entry: CacheEntry, vector: Vector) -> None:
        self.store.put(entry, vector)

    async def delete(self, key: str) -> None:
        self.store.delete(key)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "state": "up",
            "entries": len(self.store),
            "evictions": self.store.evictions,
            "expirations": self.store.expirations,
        }
