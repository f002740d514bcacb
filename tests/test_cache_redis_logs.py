"""The Redis backend logs each real change of state once (hysteresis on recovery)."""

from __future__ import annotations

import logging

import pytest

from intent_router.cache import RedisBackend


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_flapping_recovery_logs_down_once_and_up_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="intent_router.cache.redis_backend")
    clock = FakeClock()
    backend = RedisBackend("redis://127.0.0.1:1/0", settle_s=2.0, clock=clock)
    try:
        backend._mark_up()  # connected at start
        backend._mark_down(ConnectionError("refused"))
        for _ in range(5):  # Redis is back, but stale connections fail a few times
            clock.now += 0.5
            backend._mark_up()
            clock.now += 0.5
            backend._mark_down(ConnectionError("reset"))
        clock.now += 1
        backend._mark_up()
        clock.now += 1.9
        backend._log_recovery()  # up for 1.9 s: not yet settled
        assert backend.available
        clock.now += 0.1
        backend._log_recovery()
        backend._log_recovery()
    finally:
        await backend.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" ", 3)[3] for m in messages] == [
        "connected, mirror synced",
        "unreachable, caching paused: refused",
        "reachable again, mirror re-synced",
    ]
    assert backend.errors == 6
