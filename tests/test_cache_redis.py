"""RedisBackend against a real redis-server: sharing, outage and recovery, TTL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
import redis.asyncio as aioredis
from tests.cache_fixtures import Embed, embed, redis_server  # noqa: F401
from tests.redis_server import RedisServer

from intent_router.cache import CachePolicy, CacheScope, RedisBackend, ResponseCache

pytestmark = pytest.mark.redis

POLICY = CachePolicy(threshold=0.85, ttl_s=60)
SCOPE = CacheScope.of(route="general", chain=["m1"])
NS = "test:cache"


def replica(url: str) -> ResponseCache:
    return ResponseCache(RedisBackend(url, namespace=NS, probe_every_s=0.05, block_ms=100))


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[ResponseCache, ResponseCache]]:  # noqa: F811
    a, b = replica(redis_server.url), replica(redis_server.url)
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()


async def eventually(check: Callable[[], object], within_s: float = 1.0) -> float:
    """Poll ``check`` (sync or async) until truthy; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {within_s}s")


async def test_stored_by_one_replica_is_a_semantic_hit_on_the_other(
    pair: tuple[ResponseCache, ResponseCache],
    embed: Embed,  # noqa: F811
) -> None:
    a, b = pair
    cached = "How do I reverse a list in Python?"
    query = "What's the best way to reverse a list in Python?"
    assert await a.store(SCOPE, cached, embed(cached), {"content": "a[::-1]"}, POLICY)

    async def hit_on_b() -> bool:
        hit = await b.lookup(SCOPE, query, embed(query), POLICY)
        return hit is not None and hit.kind == "semantic" and hit.payload["content"] == "a[::-1]"

    await eventually(hit_on_b, within_s=1.0)
    near_miss = "How do I reverse a list in Java?"
    assert await b.lookup(SCOPE, near_miss, embed(near_miss), POLICY) is None


async def test_entry_ttl_lives_in_redis_and_expiry_there_is_a_miss(
    pair: tuple[ResponseCache, ResponseCache],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    a, b = pair
    vec = np.eye(384, dtype=np.float32)[3]
    await a.store(SCOPE, "ttl question", vec, {"content": "x"}, CachePolicy(ttl_s=30))
    client = aioredis.Redis.from_url(redis_server.url)
    keys = [k async for k in client.scan_iter(f"{NS}:e:*")]
    assert len(keys) == 1
    assert 0 < await client.pttl(keys[0]) <= 30_000
    backend_b = b.backend
    assert isinstance(backend_b, RedisBackend)
    await eventually(lambda: len(backend_b.mirror) == 1)
    await client.delete(keys[0])  # as if Redis expired it
    assert await b.lookup(SCOPE, "ttl question", vec, POLICY) is None
    await client.aclose()

    async def other_scope_lookup() -> None:
        await b.lookup(SCOPE, "ttl questions", vec, POLICY)  # semantic path: fetch misses

    await other_scope_lookup()
    assert len(backend_b.mirror) == 0  # removed locally


async def test_redis_outage_is_a_miss_and_the_cache_recovers(
    pair: tuple[ResponseCache, ResponseCache],
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = pair
    caplog.set_level(logging.WARNING, logger="intent_router.cache.redis_backend")
    eye = np.eye(384, dtype=np.float32)
    await a.store(SCOPE, "before", eye[0], {"content": "before"}, POLICY)
    await eventually(lambda: b.backend.stats()["entries"] == 1)

    redis_server.stop()
    start = time.monotonic()
    for i in range(20):  # requests keep flowing: misses and dropped stores, no exceptions
        assert await a.lookup(SCOPE, "before", eye[0], POLICY) is None or i == 0
        await a.store(SCOPE, f"during {i}", eye[i + 1], {"content": "x"}, POLICY)
        await b.lookup(SCOPE, "before", eye[0], POLICY)
    assert time.monotonic() - start < 2.0  # a dead Redis never stalls requests
    await eventually(lambda: not a.backend.available and not b.backend.available)
    assert a.stats()["state"] == "down"

    redis_server.start()
    await eventually(lambda: a.backend.available and b.backend.available, within_s=3.0)
    await a.store(SCOPE, "after", eye[50], {"content": "after"}, POLICY)
    await eventually(lambda: b.lookup(SCOPE, "after", eye[50], POLICY))
    assert await b.lookup(SCOPE, "before", eye[0], POLICY) is None  # Redis lost it: no lie

    def count(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records)

    # Recovery is logged once Redis stayed up for settle_s (2 s): a blip is not a recovery.
    await eventually(lambda: count("reachable again") == 2, within_s=5.0)
    assert count("unreachable") == 2 and count("reachable again") == 2  # once per replica
