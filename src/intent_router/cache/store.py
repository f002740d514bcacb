"""The facade the service calls: look up before dispatch, store after it.

Lookup order: the exact tier (same scope, same normalised question), then the vector tier
(same scope, cosine at or above the route's threshold), whose best candidates must pass the
:class:`~intent_router.cache.verify.Verifier` before anything is served. ``relaxed=True``
(dispatch failed and the route allows ``stale_if_error``) also accepts expired entries and
the looser ``stale_threshold``; those hits say ``kind="stale"``.

The cache never embeds: the caller hands in the query vector it already computed for
routing. Backend trouble never raises from here; it is a miss, counted in :meth:`stats`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from typing import Any

from intent_router.cache.backend import CacheBackend
from intent_router.cache.entry import CacheEntry, CacheHit, HitKind
from intent_router.cache.keys import CacheScope, exact_key
from intent_router.cache.memory import Clock
from intent_router.cache.policy import CacheDefaults, CachePolicy
from intent_router.cache.semantic import Vector
from intent_router.cache.verify import Verifier
from intent_router.errors import CacheError

log = logging.getLogger(__name__)


class ResponseCache:
    """Exact + verified semantic response cache over one backend."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        verifier: Verifier | None = None,
        defaults: CacheDefaults | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.backend = backend
        self.verifier = verifier if verifier is not None else Verifier()
        self.defaults = defaults if defaults is not None else CacheDefaults()
        self.clock = clock
        self._counts: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()

    async def start(self) -> None:
        await self.backend.start()

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def lookup(
        self,
        scope: CacheScope,
        text: str,
        vector: Vector,
        policy: CachePolicy,
        *,
        relaxed: bool = False,
    ) -> CacheHit | None:
        """A cached answer for ``text`` in ``scope``, or None (a miss)."""
        if not policy.enabled:
            return None
        relaxed = relaxed and policy.stale_if_error
        try:
            hit = await self._lookup(scope, text, vector, policy, relaxed)
        except CacheError as exc:
            log.debug("cache lookup failed, treated as a miss: %s", exc)
            hit = None
        self._counts[f"hits_{hit.kind}" if hit else "misses"] += 1
        return hit

    async def lookup_exact(self, scope: CacheScope, text: str) -> CacheHit | None:
        """The exact tier alone (no vector needed): a fresh entry for the same question."""
        try:
            entry = await self.backend.get(exact_key(scope, text))
        except CacheError as exc:
            log.debug("cache lookup failed, treated as a miss: %s", exc)
            return None
        hit = self._serve(entry, "exact", 1.0, relaxed=False) if entry is not None else None
        if hit is not None:
            self._counts["hits_exact"] += 1
        return hit

    async def _lookup(
        self, scope: CacheScope, text: str, vector: Vector, policy: CachePolicy, relaxed: bool
    ) -> CacheHit | None:
        key = exact_key(scope, text)
        entry = await self.backend.get(key)
        if entry is not None and (hit := self._serve(entry, "exact", 1.0, relaxed)):
            return hit
        threshold = policy.relaxed_threshold if relaxed else policy.threshold
        candidates = await self.backend.nearest(
            scope.digest, vector, self.defaults.candidates, threshold
        )
        for candidate in candidates:
            if candidate.key == key:
                continue
            if self.defaults.verify:
                verdict = await asyncio.to_thread(self.verifier.verify, text, candidate.text)
                if not verdict.ok:
                    self._rejections[verdict.failed or "?"] += 1
                    continue
            entry = await self.backend.get(candidate.key)
            if entry is not None and (
                hit := self._serve(entry, "semantic", candidate.similarity, relaxed)
            ):
                return hit
        return None

    def _serve(
        self, entry: CacheEntry, kind: HitKind, similarity: float, relaxed: bool
    ) -> CacheHit | None:
        now = self.clock()
        if now >= entry.keep_until:
            return None
        if now >= entry.fresh_until:
            if not relaxed:
                return None
            kind = "stale"
        return CacheHit(
            payload=entry.payload,
            kind=kind,
            similarity=similarity,
            age_s=max(0.0, now - entry.created_at),
            cached_query=entry.text,
        )

    async def store(
        self,
        scope: CacheScope,
        text: str,
        vector: Vector,
        payload: dict[str, Any],
        policy: CachePolicy,
    ) -> bool:
        """Cache ``payload`` as the answer to ``text``; False if not stored (and why: stats)."""
        if not policy.enabled:
            self._counts["stores_skipped_disabled"] += 1
            return False
        size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
        if size > self.defaults.max_payload_bytes:
            self._counts["stores_skipped_size"] += 1
            return False
        if not self.backend.available:
            self._counts["stores_dropped_unavailable"] += 1
            return False
        now = self.clock()
        entry = CacheEntry(
            key=exact_key(scope, text),
            scope=scope.digest,
            text=text,
            created_at=now,
            fresh_until=now + policy.ttl_s,
            keep_until=now + policy.keep_s,
            payload=payload,
        )
        try:
            await self.backend.put(entry, vector)
        except CacheError as exc:
            log.debug("cache store failed, dropped: %s", exc)
            self._counts["stores_dropped_unavailable"] += 1
            return False
        self._counts["stores"] += 1
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: hits by kind, misses, stores, rejections, backend state."""
        counts = {
            name: self._counts[name]
            for name in ("hits_exact", "hits_semantic", "hits_stale", "misses", "stores")
        }
        skipped = {k: v for k, v in self._counts.items() if k.startswith("stores_")}
        return {
            **counts,
            **skipped,
            "verifier_rejections": sum(self._rejections.values()),
            "verifier_rejections_by_check": dict(self._rejections),
            "available": self.backend.available,
            **self.backend.stats(),
        }
