"""ResponseCache over the memory backend: tiers, scope, verification, TTL, LRU, policy."""

from __future__ import annotations

import numpy as np
import pytest
from tests.cache_fixtures import Embed, embed  # noqa: F401

from intent_router.cache import (
    CacheDefaults,
    CachePolicy,
    CacheScope,
    MemoryBackend,
    ResponseCache,
)

POLICY = CachePolicy(threshold=0.85, ttl_s=60)
SCOPE = CacheScope.of(route="general", chain=["m1"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(max_entries: int = 100, clock: Clock | None = None) -> ResponseCache:
    clock = clock or Clock()
    backend = MemoryBackend(max_entries=max_entries, clock=clock)
    return ResponseCache(backend, defaults=CacheDefaults(max_entries=max_entries), clock=clock)


def answer(text: str) -> dict[str, object]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


async def test_exact_hit_and_semantic_hit(embed: Embed) -> None:  # noqa: F811
    cache = make()
    cached = "How do I reverse a list in Python?"
    assert await cache.store(SCOPE, cached, embed(cached), answer("a[::-1]"), POLICY)

    hit = await cache.lookup(SCOPE, "how do i reverse a list in python", embed(cached), POLICY)
    assert hit is not None and hit.kind == "exact" and hit.payload == answer("a[::-1]")

    query = "What's the best way to reverse a list in Python?"
    hit = await cache.lookup(SCOPE, query, embed(query), POLICY)
    assert hit is not None and hit.kind == "semantic" and hit.cached_query == cached
    assert 0.85 <= hit.similarity < 1.0
    stats = cache.stats()
    assert (stats["hits_exact"], stats["hits_semantic"], stats["stores"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("convert 5 USD to EUR", "convert 50 USD to EUR"),
        ("Why does my code compile?", "Why doesn't my code compile?"),
        ("flights from Paris to London", "flights from London to Paris"),
        ("how to kill a python process", "how to kill a python"),
    ],
)
async def test_near_misses_are_misses(embed: Embed, cached: str, query: str) -> None:  # noqa: F811
    cache = make()
    loose = CachePolicy(threshold=0.5)  # let cosine through: the verifier must say no
    await cache.store(SCOPE, cached, embed(cached), answer("x"), loose)
    assert await cache.lookup(SCOPE, query, embed(query), loose) is None
    assert cache.stats()["verifier_rejections"] == 1


async def test_nothing_crosses_scopes(embed: Embed) -> None:  # noqa: F811
    cache = make()
    text = "What is the capital of France?"
    await cache.store(SCOPE, text, embed(text), answer("Paris"), POLICY)
    others = [
        CacheScope.of(route="geo", chain=["m1"]),
        CacheScope.of(route="general", chain=["m2"]),
        CacheScope.of(route="general", chain=["m1"], model="m1"),
        CacheScope.of(route="general", chain=["m1"], system="Answer in French."),
        CacheScope.of(route="general", chain=["m1"], temperature=0.9),
        CacheScope.of(route="general", chain=["m1"], max_tokens=5),
        CacheScope.of(route="general", chain=["m1"], tools=[{"type": "function"}]),
        CacheScope.of(route="general", chain=["m1"], response_format={"type": "json_object"}),
        CacheScope.of(
            route="general", chain=["m1"], history=[{"role": "user", "content": "Be brief."}]
        ),
    ]
    for other in others:
        assert await cache.lookup(other, text, embed(text), POLICY) is None
    assert await cache.lookup(SCOPE, text, embed(text), POLICY) is not None


async def test_ttl_expiry_and_stale_if_error() -> None:
    clock = Clock()
    cache = make(clock=clock)
    vec = np.eye(384, dtype=np.float32)[0]
    policy = CachePolicy(ttl_s=10, stale_if_error=True, stale_grace_s=100)
    await cache.store(SCOPE, "q", vec, answer("a"), policy)
    clock.now += 9
    assert (await cache.lookup(SCOPE, "q", vec, policy)) is not None
    clock.now += 2  # past ttl: fresh lookups miss, a relaxed one (dispatch failed) is stale
    assert await cache.lookup(SCOPE, "q", vec, policy) is None
    stale = await cache.lookup(SCOPE, "q", vec, policy, relaxed=True)
    assert stale is not None and stale.kind == "stale" and stale.age_s == 11
    no_stale = CachePolicy(ttl_s=10)
    assert await cache.lookup(SCOPE, "q", vec, no_stale, relaxed=True) is None
    clock.now += 100  # past the grace: gone from the map and the vector tier
    assert await cache.lookup(SCOPE, "q", vec, policy, relaxed=True) is None
    backend = cache.backend
    assert isinstance(backend, MemoryBackend)
    assert len(backend.store) == 0 and backend.store.vectors() == 0
    assert backend.stats()["expirations"] == 1


async def test_lru_eviction_keeps_memory_bounded() -> None:
    cache = make(max_entries=10)
    eye = np.eye(384, dtype=np.float32)
    for i in range(10):
        await cache.store(SCOPE, f"q{i}", eye[i], answer(str(i)), POLICY)
    assert await cache.lookup(SCOPE, "q0", eye[0], POLICY) is not None  # q0 is now recent
    for i in range(10, 40):
        scope = SCOPE if i % 2 else CacheScope.of(route=f"r{i}")
        await cache.store(scope, f"q{i}", eye[i], answer(str(i)), POLICY)
    backend = cache.backend
    assert isinstance(backend, MemoryBackend)
    assert len(backend.store) == 10 and backend.store.vectors() == 10
    assert backend.stats()["evictions"] == 30
    assert await cache.lookup(SCOPE, "q1", eye[1], POLICY) is None  # least recently used


async def test_disabled_route_never_stores_or_serves() -> None:
    cache = make()
    vec = np.eye(384, dtype=np.float32)[0]
    off = CachePolicy(enabled=False)
    assert not await cache.store(SCOPE, "q", vec, answer("a"), off)
    await cache.store(SCOPE, "q", vec, answer("a"), POLICY)
    assert await cache.lookup(SCOPE, "q", vec, off) is None
    assert cache.stats()["stores_skipped_disabled"] == 1


async def test_oversized_payload_is_not_stored() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    cache = ResponseCache(backend, defaults=CacheDefaults(max_payload_bytes=50), clock=clock)
    vec = np.eye(384, dtype=np.float32)[0]
    assert not await cache.store(SCOPE, "q", vec, answer("x" * 100), POLICY)
    assert cache.stats()["stores_skipped_size"] == 1
