"""Pick the key store and the rate limiter a configuration asks for."""

from __future__ import annotations

from pathlib import Path

from intent_router.access.file_store import FileKeyStore
from intent_router.access.keys import KeyStore
from intent_router.access.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from intent_router.access.redis_store import DEFAULT_NAMESPACE, RedisKeyStore


def key_store(
    keys_file: Path | None, redis_url: str | None, namespace: str = DEFAULT_NAMESPACE
) -> KeyStore | None:
    """The file store, the Redis store, or None (keys off)."""
    if redis_url is not None:
        return RedisKeyStore(redis_url, namespace=namespace)
    if keys_file is not None:
        return FileKeyStore(keys_file)
    return None


def rate_limiter(redis_url: str | None, namespace: str = DEFAULT_NAMESPACE) -> RateLimiter:
    """Limits shared through Redis when keys are, else held in this process."""
    if redis_url is not None:
        return RedisRateLimiter(redis_url, namespace=namespace)
    return MemoryRateLimiter()
