"""Pytest fixtures of the cache tests: the real encoder (once per session) and Redis.

Import the fixtures into a test module (``from intent_router.testing.cache_fixtures import
embed, redis_server``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest

from intent_router.testing.redis_server import RedisServer, redis_binary, running_redis

Embed = Callable[[str], npt.NDArray[np.float32]]


@pytest.fixture(scope="session")
def embed() -> Embed:
    """Embed one text with the real encoder (loaded once; results memoised)."""
    from intent_router.embedding.encoder import Encoder

    encoder = Encoder()
    memo: dict[str, npt.NDArray[np.float32]] = {}

    def _embed(text: str) -> npt.NDArray[np.float32]:
        if text not in memo:
            memo[text] = encoder.encode([text])[0]
        return memo[text]

    return _embed


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port; skipped if the binary is absent."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server binary not found on PATH (apt-get install redis-server)")
    with running_redis(binary) as server:
        yield server
