"""Backoff strategies and the breaker state machine, with injected rng and clock."""

from __future__ import annotations

import random

import pytest

from intent_router.resilience import (
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    ExponentialJitter,
    FixedBackoff,
    MemoryBreakerStorage,
    retry_delay,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- backoff ---------------------------------------------------------------------------


def test_exponential_jitter_stays_under_a_growing_capped_ceiling() -> None:
    backoff = ExponentialJitter(base_s=0.5, cap_s=4.0, rng=random.Random(1))
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4, 5, 100)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for n in range(1, 8):
        delays = [backoff.delay(n) for _ in range(200)]
        assert all(0.0 <= d <= backoff.ceiling(n) for d in delays)
        assert max(delays) > backoff.ceiling(n) * 0.8  # full jitter spans the range


def test_exponential_jitter_is_reproducible_with_a_seeded_rng() -> None:
    a = ExponentialJitter(rng=random.Random(42))
    b = ExponentialJitter(rng=random.Random(42))
    assert [a.delay(n) for n in range(1, 6)] == [b.delay(n) for n in range(1, 6)]


def test_retry_after_wins_over_backoff() -> None:
    assert retry_delay(FixedBackoff(0.1), 1, retry_after=2.5, remaining_s=10) == 2.5
    assert retry_delay(FixedBackoff(0.1), 1, retry_after=None, remaining_s=10) == 0.1
    assert retry_delay(FixedBackoff(0.1), 1, retry_after=-3, remaining_s=10) == 0.0


def test_no_retry_when_the_wait_reaches_the_deadline() -> None:
    assert retry_delay(FixedBackoff(0.1), 1, retry_after=5.0, remaining_s=4.0) is None
    assert retry_delay(FixedBackoff(3.0), 1, retry_after=None, remaining_s=3.0) is None
    assert retry_delay(FixedBackoff(0.0), 1, retry_after=None, remaining_s=0.0) is None


def test_backoff_rejects_negative_settings() -> None:
    with pytest.raises(ValueError):
        ExponentialJitter(base_s=-1)


# -- breaker ---------------------------------------------------------------------------


def make(threshold: int = 3, cooldown: float = 10.0) -> tuple[CircuitBreaker, FakeClock, list]:
    clock = FakeClock()
    changes: list[tuple[str, BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        "m", failure_threshold=threshold, cooldown_s=cooldown, clock=clock,
        listeners=[lambda *c: changes.append(c)],
    )  # fmt: skip
    return breaker, clock, changes


def test_opens_after_n_consecutive_failures_only() -> None:
    b, _, changes = make(threshold=3)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    b.record_success()  # resets the count
    for _ in range(2):
        b.record_failure()
    assert b.state is BreakerState.CLOSED and changes == []
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert changes == [("m", BreakerState.CLOSED, BreakerState.OPEN)]
    assert not b.allow()


def test_cooldown_then_exactly_one_probe_then_closed() -> None:
    b, clock, changes = make(threshold=1, cooldown=10)
    b.record_failure()
    clock.now += 9.99
    assert not b.allow()
    clock.now += 0.01
    assert b.allow()  # the probe
    assert b.state is BreakerState.HALF_OPEN
    assert not b.allow() and not b.allow()  # concurrent callers see it open
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow() and b.allow()
    assert [new for _, _, new in changes] == ["open", "half_open", "closed"]


def test_probe_failure_reopens_for_a_full_cooldown() -> None:
    b, clock, _ = make(threshold=1, cooldown=10)
    b.record_failure()
    clock.now += 10
    assert b.allow()
    clock.now += 3
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 9.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()


def test_released_probe_lets_the_next_caller_probe() -> None:
    b, clock, _ = make(threshold=1, cooldown=1)
    b.record_failure()
    clock.now += 1
    assert b.allow()
    b.release()  # cancelled without a verdict
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()
    assert not b.allow()


def test_results_of_calls_started_before_opening_do_not_move_an_open_breaker() -> None:
    b, clock, _ = make(threshold=1, cooldown=10)
    b.record_failure()
    opened = clock.now
    clock.now += 5
    b.record_failure()
    b.record_success()
    assert b.state is BreakerState.OPEN
    clock.now = opened + 10
    assert b.allow()


def test_registry_shares_storage_and_listeners() -> None:
    clock = FakeClock()
    storage = MemoryBreakerStorage()
    seen: list[str] = []
    reg = BreakerRegistry(failure_threshold=1, cooldown_s=5, clock=clock, storage=storage)
    reg.add_listener(lambda name, old, new: seen.append(f"{name}:{new}"))
    reg.get("x").record_failure()
    assert reg.get("x") is reg.get("x")
    assert reg.states() == {"x": BreakerState.OPEN}
    assert storage.load("x").state is BreakerState.OPEN
    assert storage.load("y").state is BreakerState.CLOSED
    assert seen == ["x:open"]
