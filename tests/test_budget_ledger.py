"""The budget ledger: one suite run against the memory and the Redis implementation."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from intent_router.access import Principal
from intent_router.access.budget import (
    DAY_S,
    NO_RESERVATION,
    BudgetLedger,
    TeamBudget,
    window,
)
from intent_router.access.budget_memory import MemoryBudgetLedger, spend_file_for
from intent_router.access.budget_redis import RedisBudgetLedger
from intent_router.access.principal import ANONYMOUS
from intent_router.errors import AccessUnavailableError, BudgetExceededError
from intent_router.testing.redis_server import free_port, redis_binary, running_redis

ALICE = Principal(key_id="key_a", name="alice", team="research", budget_usd=0.50, period="1d")
BOB = Principal(key_id="key_b", name="bob", team="research", budget_usd=10.0, period="1d")


class Clock:
    def __init__(self) -> None:
        day = window("1d", time.time())[0]
        self.now = day * DAY_S + 3600.0  # 01:00 UTC today: EXPIREAT stays in the future

    def __call__(self) -> float:
        return self.now


Factory = Callable[..., BudgetLedger]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server binary not found on PATH (apt-get install redis-server)")
    with running_redis(binary) as server:
        yield server.url


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Ledgers of one kind sharing one store (one dict per test is shared via Redis only)."""
    made: list[BudgetLedger] = []
    namespace = f"test:budget:{uuid.uuid4().hex[:8]}"
    memory: MemoryBudgetLedger | None = None

    def factory(**kwargs: object) -> BudgetLedger:
        nonlocal memory
        if request.param == "memory":
            if memory is None:  # one process: every "replica" is the same ledger
                memory = MemoryBudgetLedger(**kwargs)  # type: ignore[arg-type]
                made.append(memory)
            return memory
        url = request.getfixturevalue("redis_url")
        ledger = RedisBudgetLedger(url, namespace=namespace, **kwargs)  # type: ignore[arg-type]
        made.append(ledger)
        return ledger

    yield factory
    for ledger in made:
        await ledger.aclose()


async def test_settle_counts_the_real_cost_and_releases_the_rest(make: Factory) -> None:
    ledger = make(clock=Clock())
    held = await ledger.reserve(ALICE, 0.20)
    [key, team] = await ledger.usage(ALICE)
    assert (key.used_usd, key.reserved_usd) == (0.0, 0.20)
    assert (team.used_usd, team.reserved_usd) == (0.0, 0.20)
    await ledger.settle(held, 0.05)
    [key, team] = await ledger.usage(ALICE)
    assert (key.used_usd, key.reserved_usd) == (0.05, 0.0)
    assert team.used_usd == 0.05
    assert key.share == pytest.approx(0.1)
    assert await ledger.spend("key", "key_a", "1d") == 0.05
    assert await ledger.spend("team", "research", "1d") == 0.05


async def test_a_reservation_that_does_not_fit_names_the_budget(make: Factory) -> None:
    ledger = make(clock=Clock())
    await ledger.settle(await ledger.reserve(ALICE, 0.30), 0.30)
    held = await ledger.reserve(ALICE, 0.19)
    with pytest.raises(BudgetExceededError) as info:
        await ledger.reserve(ALICE, 0.02)
    assert str(info.value) == (
        "budget of key 'alice' (0.50 USD per 1d) is spent: 0.49 reserved or used"
    )
    assert info.value.budget == "key 'alice'"
    assert info.value.retry_after == 23 * 3600  # the day's window ends at midnight UTC
    await ledger.release(held)
    await ledger.reserve(ALICE, 0.02)  # room again once the hold is released


async def test_key_and_team_both_or_neither(make: Factory) -> None:
    ledger = make(clock=Clock(), teams={"research": TeamBudget(1.00, "1d")})
    await ledger.settle(await ledger.reserve(BOB, 0.90), 0.90)
    with pytest.raises(BudgetExceededError, match=r"team 'research' \(1.00 USD per 1d\)"):
        await ledger.reserve(ALICE, 0.20)  # alice's own budget has room; the team's not
    [key, team] = await ledger.usage(ALICE)
    assert key.reserved_usd == 0.0  # nothing held on the key when the team refused
    assert team.reserved_usd == 0.0
    await ledger.reserve(ALICE, 0.10)


async def test_anonymous_requests_hold_nothing(make: Factory) -> None:
    ledger = make(clock=Clock())
    assert await ledger.reserve(ANONYMOUS, 100.0) is NO_RESERVATION
    await ledger.settle(NO_RESERVATION, 1.0)
    assert await ledger.usage(ANONYMOUS) == []


async def test_a_burst_never_settles_above_the_budget(make: Factory) -> None:
    """64 concurrent requests, each reserving 0.02 and costing 0.011 to 0.02, two replicas."""
    clock = Clock()
    replicas = [make(clock=clock), make(clock=clock)]
    rng = random.Random(7)
    refused = 0

    async def one(i: int) -> None:
        nonlocal refused
        ledger = replicas[i % 2]
        await asyncio.sleep(rng.random() / 50)  # arrivals spread over 20 ms
        try:
            held = await ledger.reserve(ALICE, 0.02)
        except BudgetExceededError:
            refused += 1
            return
        await asyncio.sleep(rng.random() / 100)
        await ledger.settle(held, rng.uniform(0.011, 0.02))

    await asyncio.gather(*(one(i) for i in range(64)))
    spent = await replicas[0].spend("key", "key_a", "1d")
    assert 25 * 0.011 <= spent <= 0.50  # at least the 25 holds that fit at once
    assert refused > 0
    [key, _] = await replicas[1].usage(ALICE)
    assert key.reserved_usd == 0.0


async def test_periods_reset_at_the_window_boundary(make: Factory) -> None:
    clock = Clock()
    ledger = make(clock=clock)
    late = await ledger.reserve(ALICE, 0.25)
    await ledger.settle(await ledger.reserve(ALICE, 0.25), 0.25)
    with pytest.raises(BudgetExceededError):
        await ledger.reserve(ALICE, 0.01)
    clock.now += 23 * 3600  # midnight UTC: a new day
    assert await ledger.spend("key", "key_a", "1d") == 0.0
    await ledger.settle(late, 0.25)  # settled in the window it was reserved in
    assert await ledger.spend("key", "key_a", "1d") == 0.0
    await ledger.settle(await ledger.reserve(ALICE, 0.50), 0.50)
    assert await ledger.spend("key", "key_a", "1d") == 0.50


async def test_weekly_windows_start_on_monday() -> None:
    monday = 1_763_942_400.0  # 2025-11-24 00:00 UTC, a Monday
    assert window("7d", monday)[0] == window("7d", monday + 7 * DAY_S - 1)[0]
    assert window("7d", monday - 1)[0] == window("7d", monday)[0] - 1
    assert window("7d", monday)[1] == monday + 7 * DAY_S


async def test_reservations_of_a_dead_process_expire(make: Factory) -> None:
    clock = Clock()
    ledger = make(clock=clock, reservation_ttl_s=30.0)
    await ledger.reserve(ALICE, 0.50)  # never settled: its process "died"
    with pytest.raises(BudgetExceededError):
        await ledger.reserve(ALICE, 0.10)
    clock.now += 31
    [key, _] = await ledger.usage(ALICE)
    assert key.reserved_usd == 0.0
    await ledger.reserve(ALICE, 0.10)


def test_spend_persists_beside_the_keys_file(tmp_path: Path) -> None:
    path = spend_file_for(tmp_path / "keys.json")
    assert path == tmp_path / "keys.spend.json"
    clock = Clock()

    async def run() -> None:
        ledger = MemoryBudgetLedger(path, clock=clock, flush_s=0.01)
        await ledger.settle(await ledger.reserve(ALICE, 0.2), 0.125)
        await asyncio.sleep(0.05)  # the debounced write happens without a close
        assert json.loads(path.read_text())["spend_nano_usd"]
        await ledger.settle(await ledger.reserve(ALICE, 0.2), 0.125)
        await ledger.aclose()
        again = MemoryBudgetLedger(path, clock=clock)
        assert await again.spend("key", "key_a", "1d") == 0.25
        assert await again.spend("team", "research", "1d") == 0.25
        clock.now += 3 * DAY_S  # windows ended more than a period ago are dropped
        again.save()
        assert json.loads(path.read_text())["spend_nano_usd"] == {}

    asyncio.run(run())
    assert not list(tmp_path.glob("*.tmp"))


async def test_an_unreachable_redis_refuses_rather_than_serves_free() -> None:
    ledger = RedisBudgetLedger(f"redis://127.0.0.1:{_closed_port()}/0", connect_timeout_s=0.5)
    with pytest.raises(AccessUnavailableError, match="budget store"):
        await ledger.reserve(ALICE, 0.01)
    await ledger.aclose()


def _closed_port() -> int:
    return free_port()  # nothing listens there
