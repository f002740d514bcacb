"""Rate limits: sliding windows in memory (injected clock) and in a real Redis shared by
replicas."""

from __future__ import annotations

import asyncio

import pytest
from tests.cache_fixtures import redis_server  # noqa: F401 - a fixture
from tests.redis_server import RedisServer

from intent_router.access import Principal
from intent_router.access.context import RequestAccess, TeamLimits, duration
from intent_router.access.ratelimit import (
    Bucket,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from intent_router.errors import RateLimitedError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rpm_20_refuses_the_21st_request_of_any_minute_until_the_oldest_leaves() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    rpm = Bucket("key:a:rpm", 20, 1)
    verdicts = []
    for _ in range(21):  # one a second: a steady pace still hits the limit
        verdicts.append(await limiter.acquire([rpm]))
        clock.now += 1
    assert all(v.allowed for v in verdicts[:20]) and not verdicts[20].allowed
    assert [v.states[0].remaining for v in verdicts[:3]] == [19, 18, 17]
    assert verdicts[19].states[0].remaining == 0
    assert verdicts[20].retry_after_s == pytest.approx(40.0)  # the first leaves at 60 s
    assert verdicts[20].states[0].reset_s == pytest.approx(40.0)
    clock.now = 1000 + 59.999
    assert not (await limiter.acquire([rpm])).allowed
    clock.now = 1000 + 60
    assert (await limiter.acquire([rpm])).allowed
    assert not (await limiter.acquire([rpm])).allowed  # the second leaves at 61 s


async def test_a_burst_waits_for_the_whole_window() -> None:
    limiter = MemoryRateLimiter(Clock())
    verdicts = [await limiter.acquire([Bucket("b", 20, 1)]) for _ in range(21)]
    assert [v.allowed for v in verdicts] == [True] * 20 + [False]
    assert verdicts[20].retry_after_s == pytest.approx(60.0)


async def test_a_refused_request_charges_no_bucket() -> None:
    limiter = MemoryRateLimiter(Clock())
    rpm, tpm = Bucket("rpm", 10, 1), Bucket("tpm", 100, 80)
    assert (await limiter.acquire([rpm, tpm])).allowed
    refused = await limiter.acquire([rpm, tpm])  # 160 tokens > 100
    assert not refused.allowed
    assert refused.states[0].retry_after_s == 0 and refused.states[1].retry_after_s > 0
    assert refused.states[0].remaining == 9  # the RPM bucket was not charged for it
    small = await limiter.acquire([rpm, Bucket("tpm", 100, 20)])
    assert small.allowed and [s.remaining for s in small.states] == [8, 0]


async def test_correcting_an_entry_makes_room_or_takes_it() -> None:
    limiter = MemoryRateLimiter(Clock())
    tpm = Bucket("tpm", 1000, 900)
    first = await limiter.acquire([tpm])
    assert first.allowed
    assert not (await limiter.acquire([Bucket("tpm", 1000, 500)])).allowed
    await limiter.adjust(tpm, first.entry, 100)  # used 100, not 900
    assert (await limiter.acquire([Bucket("tpm", 1000, 500)])).allowed
    await limiter.adjust(tpm, first.entry, 500)
    assert not (await limiter.acquire([Bucket("tpm", 1000, 1)])).allowed


async def test_a_request_larger_than_the_limit_passes_only_into_an_empty_window() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    assert (await limiter.acquire([Bucket("tpm", 100, 5000)])).allowed
    assert not (await limiter.acquire([Bucket("tpm", 100, 1)])).allowed
    clock.now += 60
    assert (await limiter.acquire([Bucket("tpm", 100, 1)])).allowed
    assert not (await limiter.acquire([Bucket("tpm", 100, 5000)])).allowed


def key(**limits: int) -> Principal:
    return Principal(key_id="key_1", name="alice", **limits)  # type: ignore[arg-type]


async def test_request_access_raises_429_with_openai_headers_and_corrects_tokens() -> None:
    limiter = MemoryRateLimiter(Clock())
    first = RequestAccess(key(rpm=2, tpm=1000), limiter)
    await first.admit(input_tokens=100, max_tokens=400)
    assert first.headers() == {
        "x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "1m0s", "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "1m0s",
    }  # fmt: skip
    await first.settle(used_tokens=150)
    second = RequestAccess(key(rpm=2, tpm=1000), limiter)
    await second.admit(input_tokens=100, max_tokens=700)  # fits only after the correction
    assert second.headers()["x-ratelimit-remaining-tokens"] == "50"
    third = RequestAccess(key(rpm=2, tpm=1000), limiter)
    with pytest.raises(RateLimitedError) as caught:
        await third.admit(input_tokens=1, max_tokens=1)
    error = caught.value
    assert "requests per minute of the API key 'alice'" in str(error)
    assert error.retry_after == pytest.approx(60.0)
    assert error.headers["x-ratelimit-remaining-requests"] == "0"


def test_reset_durations_read_like_openais() -> None:
    assert [duration(s) for s in (0.02, 1.0, 3.2, 60, 90.5)] == ["20ms", "1s", "4s", "1m0s",
                                                                  "1m31s"]  # fmt: skip


async def test_without_limits_nothing_is_charged_or_reported() -> None:
    access = RequestAccess(key(), MemoryRateLimiter(Clock()))
    for _ in range(100):
        await access.admit(input_tokens=10**6, max_tokens=None)
    assert access.headers() == {}


@pytest.mark.redis
async def test_two_redis_limiters_share_one_budget_of_requests(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    a, b = RedisRateLimiter(redis_server.url), RedisRateLimiter(redis_server.url)
    limiters: list[RateLimiter] = [a, b]
    rpm = Bucket("key:shared:rpm", 20, 1)
    verdicts = await asyncio.gather(*(limiters[i % 2].acquire([rpm]) for i in range(30)))
    assert sum(v.allowed for v in verdicts) == 20
    refused = [v for v in verdicts if not v.allowed]
    assert all(59.0 < v.retry_after_s <= 60.0 for v in refused)
    assert all(v.states[0].remaining == 0 for v in refused)
    assert sorted(v.states[0].remaining for v in verdicts if v.allowed) == list(range(20))
    tpm = Bucket("key:shared:tpm", 1000, 900)
    first = await a.acquire([tpm])
    assert first.allowed
    assert not (await b.acquire([Bucket("key:shared:tpm", 1000, 500)])).allowed
    await a.adjust(tpm, first.entry, 100)
    second = await b.acquire([Bucket("key:shared:tpm", 1000, 500)])
    assert second.allowed and second.states[0].remaining == 400
    await a.aclose()
    await b.aclose()


async def test_a_teams_limit_is_shared_by_its_keys_and_named_when_reached() -> None:
    limiter = MemoryRateLimiter(Clock())
    team = TeamLimits(rpm=3)

    def member(name: str) -> RequestAccess:
        principal = Principal(key_id=f"key_{name}", name=name, team="research", rpm=10)
        return RequestAccess(principal, limiter, team)

    for name in ("alice", "bob", "alice"):
        access = member(name)
        await access.admit(input_tokens=1, max_tokens=1)
    assert access.headers()["x-ratelimit-remaining-requests"] == "0"  # the team's, not 8
    assert access.headers()["x-ratelimit-limit-requests"] == "3"
    with pytest.raises(RateLimitedError, match="requests per minute of the team 'research'"):
        await member("carol").admit(input_tokens=1, max_tokens=1)
    outsider = RequestAccess(Principal(key_id="key_x", name="x", team="ops", rpm=10), limiter)
    await outsider.admit(input_tokens=1, max_tokens=1)
    refused = member("bob")
    with pytest.raises(RateLimitedError):
        await refused.admit(input_tokens=1, max_tokens=1)
    assert refused.headers()["x-ratelimit-remaining-requests"] == "0"


async def test_settling_a_refused_request_changes_nothing() -> None:
    limiter = MemoryRateLimiter(Clock())
    first = RequestAccess(key(rpm=1, tpm=1000), limiter)
    await first.admit(input_tokens=10, max_tokens=10)
    refused = RequestAccess(key(rpm=1, tpm=1000), limiter)
    with pytest.raises(RateLimitedError):
        await refused.admit(input_tokens=10, max_tokens=10)
    await refused.settle(used_tokens=500)
    await first.settle(used_tokens=15)
    await first.settle(used_tokens=900)  # once only
    tokens = await limiter.acquire([Bucket("key:key_1:tpm", 1000, 985)])
    assert tokens.allowed and tokens.states[0].remaining == 0
