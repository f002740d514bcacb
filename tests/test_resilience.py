"""Backoff, breaker, cool-down, retry budget and panic valve, on injected rng and clock."""

from __future__ import annotations

import random

import pytest

from intent_router.resilience import (
    BreakerPolicy,
    BreakerRegistry,
    BreakerState,
    Candidate,
    CircuitBreaker,
    Cooldowns,
    ExponentialJitter,
    FixedBackoff,
    MemoryBreakerStorage,
    PanicValve,
    RetryBudget,
    least_bad,
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


def make(**policy: object) -> tuple[CircuitBreaker, FakeClock, list[BreakerState]]:
    clock = FakeClock()
    changes: list[BreakerState] = []
    values: dict[str, object] = {"minimum_calls": 4, "failure_rate": 0.5, "window_s": 10.0,
                                 "cooldown_s": 10.0, "half_open_probes": 1, **policy}  # fmt: skip
    breaker = CircuitBreaker(
        "m", BreakerPolicy(**values),  # type: ignore[arg-type]
        clock=clock, listeners=[lambda name, old, new: changes.append(new)],
    )  # fmt: skip
    return breaker, clock, changes


def test_opens_on_the_failure_rate_over_the_minimum_calls() -> None:
    b, _, changes = make(minimum_calls=4, failure_rate=0.5)
    b.record_failure()
    b.record_failure()
    b.record_failure()  # 3/3 failed, but fewer than 4 calls: not judged yet
    assert b.state is BreakerState.CLOSED
    b.record_success()  # 3/4 = 75 %
    assert b.state is BreakerState.OPEN and changes == [BreakerState.OPEN]
    assert not b.allow()


def test_a_failure_rate_under_the_threshold_never_opens() -> None:
    b, clock, _ = make(minimum_calls=10, failure_rate=0.5)
    for i in range(200):  # 40 % failures, in streaks of 4 after 6 successes
        clock.now += 0.05
        b.record_failure() if i % 10 >= 6 else b.record_success()
        assert b.state is BreakerState.CLOSED
    assert b.failure_rate() == pytest.approx(0.4, abs=0.05)


def test_old_outcomes_leave_the_window() -> None:
    b, clock, _ = make(minimum_calls=4, failure_rate=0.5, window_s=10)
    for _ in range(3):
        b.record_failure()
    clock.now += 11  # those three are out of the window
    for _ in range(3):
        b.record_success()
    b.record_failure()  # 1/4 in the window
    assert b.state is BreakerState.CLOSED
    assert b.failure_rate() == pytest.approx(0.25)


def test_slow_calls_open_it_when_configured() -> None:
    b, _, _ = make(minimum_calls=4, slow_call_s=2.0, slow_call_rate=0.75)
    for duration in (2.5, 3.0, 0.1):
        b.record_success(duration)
    assert b.state is BreakerState.CLOSED
    b.record_success(2.0)  # 3 of 4 slow
    assert b.state is BreakerState.OPEN
    fast, _, _ = make(minimum_calls=4)  # slow_call_s unset: durations do not matter
    for _ in range(8):
        fast.record_success(100.0)
    assert fast.state is BreakerState.CLOSED


def trip(b: CircuitBreaker) -> None:
    for _ in range(b.policy.minimum_calls):
        b.record_failure()
    assert b.state is BreakerState.OPEN


def test_half_open_admits_the_configured_probes_and_closes_when_they_succeed() -> None:
    b, clock, changes = make(half_open_probes=3, cooldown_s=10)
    trip(b)
    clock.now += 9.99
    assert not b.allow()
    clock.now += 0.01
    assert [b.allow() for _ in range(5)] == [True, True, True, False, False]
    assert b.state is BreakerState.HALF_OPEN
    b.record_success()
    b.record_success()
    assert b.state is BreakerState.HALF_OPEN
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.failure_rate() == 0.0  # a fresh window
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_reopens_for_a_doubled_cooldown() -> None:
    b, clock, _ = make(half_open_probes=2, cooldown_s=10)
    trip(b)
    clock.now += 10
    assert b.allow() and b.allow()
    b.record_success()
    clock.now += 3
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 19.9
    assert not b.allow()
    assert b.available_at() == pytest.approx(clock.now + 0.1)
    clock.now += 0.1
    assert b.allow()


def test_a_model_that_stays_dead_is_probed_less_and_less_until_the_cap() -> None:
    b, clock, _ = make(half_open_probes=1, cooldown_s=10, max_cooldown_s=35)
    trip(b)
    waits = []
    for _ in range(4):
        opened = clock.now
        while not b.allow():
            clock.now += 1
        waits.append(clock.now - opened)
        b.record_failure()  # the probe fails: open again
    assert waits == [10, 20, 35, 35]
    clock.now += 35
    assert b.allow()
    b.record_success()  # recovered: closed, and the next opening starts from cooldown_s
    assert b.state is BreakerState.CLOSED
    trip(b)
    assert b.available_at() == pytest.approx(clock.now + 10)


def test_released_probe_lets_the_next_caller_probe() -> None:
    b, clock, _ = make(cooldown_s=1)
    trip(b)
    clock.now += 1
    assert b.allow()
    b.release()  # cancelled without a verdict
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()
    assert not b.allow()


def test_results_of_calls_started_before_opening_do_not_move_an_open_breaker() -> None:
    b, clock, _ = make(cooldown_s=10)
    trip(b)
    opened = clock.now
    clock.now += 5
    b.record_failure()
    b.record_success()
    assert b.state is BreakerState.OPEN and b.available_at() == opened + 10
    clock.now = opened + 10
    assert b.allow()


def test_a_forced_probe_opens_the_half_open_door_early() -> None:
    b, clock, changes = make(cooldown_s=30, half_open_probes=1)
    trip(b)
    clock.now += 1
    b.force_probe()  # the panic trickle
    assert b.state is BreakerState.HALF_OPEN
    assert not b.allow()  # its permit is taken
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_registry_shares_policy_storage_and_listeners() -> None:
    clock = FakeClock()
    storage = MemoryBreakerStorage()
    seen: list[str] = []
    reg = BreakerRegistry(BreakerPolicy(minimum_calls=1), clock=clock, storage=storage)
    reg.add_listener(lambda name, old, new: seen.append(f"{name}:{new}"))
    reg.get("x").record_failure()
    assert reg.get("x") is reg.get("x")
    assert reg.states() == {"x": BreakerState.OPEN}
    assert storage.load("x").state is BreakerState.OPEN
    assert storage.load("y").state is BreakerState.CLOSED
    assert seen == ["x:open"]


# -- 429 cool-down -----------------------------------------------------------------------


def test_cooldown_follows_retry_after_capped() -> None:
    clock = FakeClock()
    c = Cooldowns(default_s=0.25, max_s=30, clock=clock)
    assert c.remaining("m") == 0
    assert c.cool("m", 2.0) == 2.0
    assert c.remaining("m") == 2.0
    clock.now += 2.0
    assert c.remaining("m") == 0
    assert c.cool("m", 600) == 30  # capped
    c.cool("m", 1.0)  # a shorter one does not shorten the cool-down
    assert c.remaining("m") == 30


def test_cooldown_without_retry_after_doubles_until_a_success() -> None:
    clock = FakeClock()
    c = Cooldowns(default_s=0.25, max_s=1.0, clock=clock)
    lengths = []
    for _ in range(4):  # each 429 from a call sent after the previous cool-down ended
        lengths.append(c.cool("m", None, started_at=clock.now))
        clock.now += 2
    assert lengths == [0.25, 0.5, 1.0, 1.0]
    c.succeeded("m")
    assert c.cool("m", None) == 0.25
    assert c.remaining("other") == 0


# -- retry budget ------------------------------------------------------------------------


def test_retry_budget_is_a_share_of_recent_requests() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=0.0, window_s=10, clock=clock)
    for _ in range(50):
        budget.record_request()
    granted = sum(budget.try_spend() for _ in range(20))
    assert granted == 10 and budget.skipped == 10  # 20 % of 50
    clock.now += 11  # the window moved on: no requests, no retries
    assert not budget.try_spend()
    for _ in range(10):
        budget.record_request()
    assert budget.try_spend() and budget.try_spend() and not budget.try_spend()
    assert (budget.retries, budget.skipped) == (12, 12)


def test_retry_budget_keeps_a_minimum_for_low_traffic() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=0.5, window_s=10, clock=clock)
    budget.record_request()
    assert sum(budget.try_spend() for _ in range(10)) == 5  # 0.5/s over 10 s
    clock.now += 10.5
    assert budget.try_spend()


# -- panic trickle -----------------------------------------------------------------------


def test_panic_valve_is_a_token_bucket_per_model() -> None:
    clock = FakeClock()
    valve = PanicValve(rate_per_s=2.0, burst=2, clock=clock)
    assert [valve.take("a") for _ in range(3)] == [True, True, False]
    assert valve.take("b")  # its own bucket
    clock.now += 0.5  # one token back
    assert valve.take("a") and not valve.take("a")
    assert valve.let_through == 4
    off = PanicValve(rate_per_s=0, clock=clock)
    assert not off.take("a")


def test_least_bad_prefers_the_lowest_failure_rate_then_the_earliest() -> None:
    assert least_bad([]) is None
    a = Candidate("a", 1.0, 50.0)
    b = Candidate("b", 0.6, 90.0)
    c = Candidate("c", 0.6, 70.0)
    assert least_bad([a, b, c]) == c


def test_a_burst_of_429s_from_calls_already_in_flight_is_one_signal() -> None:
    clock = FakeClock()
    c = Cooldowns(default_s=0.25, max_s=30, clock=clock)
    started = clock.now
    clock.now += 0.1
    assert c.cool("m", None, started_at=started) == 0.25
    for _ in range(10):  # the other calls sent before the first 429 came back
        c.cool("m", None, started_at=started)
    assert c.remaining("m") == 0.25
    clock.now += 0.3  # a call sent after the cool-down is refused again: a real limit
    assert c.cool("m", None, started_at=clock.now - 0.05) == 0.5
