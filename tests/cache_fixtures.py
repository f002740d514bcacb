"""Pytest fixtures of the cache tests: embedding with the session's encoder, and Redis.

Import the fixtures into a test module (``from tests.cache_fixtures import embed,
redis_server``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest
from tests.redis_server import RedisServer, redis_binary, running_redis

from intent_router.embedding.encoder import Encoder

Embed = Callable[[str], npt.NDArray[np.float32]]


@pytest.fixture(scope="session")
def embed(encoder: Encoder) -> Embed:
    """Embed one text with the session's real encoder (results memoised)."""
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
