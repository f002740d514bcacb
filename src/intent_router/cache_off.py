"""The response cache when it is off: the :class:`RequestCache` interface, serving nothing.

The pipeline never asks whether there is a cache; without one it talks to this object,
which misses every lookup, stores nothing and says why (``skipped="cache off"``).
"""

from __future__ import annotations

import numpy as np

from intent_router.cache import CacheHit, CachePolicy, CacheScope, Directives
from intent_router.providers import ChatRequest, ChatResponse
from intent_router.request_cache import CacheContext, CacheInfo

OFF = CacheScope(digest="off", route="off")
OFF_POLICY = CachePolicy(enabled=False)


class NullCache:
    """A cache that is off: every lookup misses, nothing is stored, nothing is counted."""

    uses_vectors = False  # a pinned request is not embedded just for the cache

    def early_scope(
        self,
        request: ChatRequest,
        pinned: str | None,
        *,
        tenant: str | None = None,
        limits: dict[str, list[str] | None] | None = None,
    ) -> CacheScope:
        return OFF

    def context(
        self,
        request: ChatRequest,
        *,
        route: str | None,
        chain: list[str],
        pinned: str | None,
        directives: Directives,
        early: CacheScope,
        lang: str | None = None,
        tenant: str | None = None,
    ) -> CacheContext:
        return CacheContext(OFF, OFF_POLICY, directives, request.temperature)

    async def lookup_exact(
        self, early: CacheScope, text: str, directives: Directives
    ) -> CacheHit | None:
        return None

    async def lookup(self, ctx: CacheContext, text: str, vector: np.ndarray) -> CacheHit | None:
        return None

    async def stale(self, ctx: CacheContext, text: str, vector: np.ndarray) -> CacheHit | None:
        return None

    async def store(
        self,
        ctx: CacheContext,
        text: str,
        vector: np.ndarray,
        response: ChatResponse,
        *,
        route: str | None,
        chain: list[str],
    ) -> CacheInfo:
        return CacheInfo(hit=None, skipped="cache off")
