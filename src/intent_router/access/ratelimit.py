"""Requests- and tokens-per-minute limits: GCRA buckets in memory or in Redis.

**Why GCRA** (the generic cell rate algorithm, a leaky bucket kept as one number): each
bucket is a single "theoretical arrival time" (TAT), so a check is O(1) in time and memory
whatever the limit (a sliding-window *log* keeps one entry per request, and TPM would
need one per token or a weighted log), and it is exact where a sliding-window *counter*
estimates from two fixed windows. With a burst tolerance of one whole window, a key
with RPM 20 may send 20 requests at once; the 21st waits ``60/20 = 3`` s (its
``Retry-After``), and capacity then comes back steadily, one request every 3 s, instead
of all at once at a window edge (no double bursts across a boundary).

A request of ``cost`` units (1 request, or N tokens) against a limit of ``L`` per window
``W`` moves ``TAT`` to ``max(TAT, now) + cost·W/L``; it is refused when that lands more
than ``W`` ahead of now. Several buckets (the key's RPM and TPM, its team's) are checked
together and charged only if every one fits, so a refused request costs nothing. A
request costing more than a whole limit (a prompt larger than the TPM) is charged as the
whole limit: it passes only when the bucket is full.

The Redis limiter runs each operation as one Lua script (check-all-then-charge-all is
atomic across replicas) and takes ``now`` from Redis' ``TIME``, so replicas whose clocks
differ still agree. TATs are kept in milliseconds and expire when they are in the past.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intent_router.errors import AccessUnavailableError

WINDOW_MS = 60_000.0
EPSILON_MS = 1e-3  # float slack: L requests of W/L each must fit in W exactly


@dataclass(frozen=True)
class Bucket:
    """One limit a request is charged against: ``key`` names it (``key:<id>:rpm``)."""

    key: str
    limit: int  # units per window
    cost: int  # units this request takes (capped to ``limit``)

    @property
    def interval_ms(self) -> float:
        return WINDOW_MS / self.limit

    @property
    def charge(self) -> int:
        return min(self.cost, self.limit)


@dataclass(frozen=True)
class BucketState:
    """A bucket as the answer's ``x-ratelimit-*`` headers report it."""

    limit: int
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # 0 when the request fitted

    @classmethod
    def of(cls, bucket: Bucket, ahead_ms: float, fitted: bool, wanted_ms: float) -> BucketState:
        """``ahead_ms``: TAT minus now after the decision; ``wanted_ms``: what the request
        would have made it (equal when it fitted)."""
        free = (WINDOW_MS - ahead_ms) / bucket.interval_ms
        retry = 0.0 if fitted else max(0.0, wanted_ms - WINDOW_MS) / 1000
        return cls(
            limit=bucket.limit,
            remaining=max(0, math.floor(free + EPSILON_MS)),
            reset_s=max(0.0, ahead_ms) / 1000,
            retry_after_s=retry,
        )


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    states: list[BucketState]  # in the order of the buckets asked

    @property
    def retry_after_s(self) -> float:
        return max((s.retry_after_s for s in self.states), default=0.0)


def step(tat_ms: float, now_ms: float, bucket: Bucket) -> tuple[float, float]:
    """GCRA: (TAT before, TAT after charging ``bucket``), both relative to now."""
    base = max(tat_ms, now_ms)
    return base - now_ms, base + bucket.charge * bucket.interval_ms - now_ms


def decide(buckets: Sequence[Bucket], ahead: Sequence[tuple[float, float]]) -> Verdict:
    """The verdict from each bucket's (before, after); shared by both limiters."""
    allowed = all(after <= WINDOW_MS + EPSILON_MS for _, after in ahead)
    states = [
        BucketState.of(b, after if allowed else before, allowed, after)
        for b, (before, after) in zip(buckets, ahead, strict=True)
    ]
    return Verdict(allowed, states)


class RateLimiter(ABC):
    """Charges buckets; shared by every request of the process (or, in Redis, of all)."""

    @abstractmethod
    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Charge every bucket if every one fits, else none."""

    @abstractmethod
    async def adjust(self, bucket: Bucket, delta: int) -> None:
        """Charge ``delta`` more units (negative: give back), never refusing."""

    async def aclose(self) -> None:  # noqa: B027 - the memory limiter holds nothing
        """Release connections."""


class MemoryRateLimiter(RateLimiter):
    """One process: the TATs in a dict (an asyncio step between awaits is atomic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tat: dict[str, float] = {}

    def _now_ms(self) -> float:
        return self.clock() * 1000

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        now = self._now_ms()
        ahead = [step(self._tat.get(b.key, 0.0), now, b) for b in buckets]
        verdict = decide(buckets, ahead)
        if verdict.allowed:
            for bucket, (_, after) in zip(buckets, ahead, strict=True):
                self._tat[bucket.key] = now + after
        if len(self._tat) > 100_000:  # forget buckets that are full again
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return verdict

    async def adjust(self, bucket: Bucket, delta: int) -> None:
        now = self._now_ms()
        tat = max(self._tat.get(bucket.key, 0.0), now) + delta * bucket.interval_ms
        self._tat[bucket.key] = max(tat, now)


# KEYS: buckets; ARGV: window_ms, epsilon, then (interval_ms, charge) per bucket.
# Returns {allowed, before_1, after_1, ...} as strings (Lua would truncate numbers).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local window, eps = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, allowed, tats = {}, 1, {}
for i = 1, #KEYS do
  local interval, charge = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local base = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now)
  tats[i] = base + charge * interval
  if tats[i] - now > window + eps then allowed = 0 end
  out[2 * i] = tostring(base - now)
  out[2 * i + 1] = tostring(tats[i] - now)
end
out[1] = tostring(allowed)
if allowed == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], tostring(tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
  end
end
return out
"""

# KEYS: one bucket; ARGV: interval_ms, delta.
_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
tat = tat + tonumber(ARGV[2]) * tonumber(ARGV[1])
if tat > now then
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


class RedisRateLimiter(RateLimiter):
    """Replicas: the TATs in Redis under ``NS:rl:<bucket>``, one Lua script per operation."""

    def __init__(
        self, url: str, *, namespace: str = "intent-router:access", op_timeout_s: float = 1.0
    ) -> None:
        self.ns = namespace
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._adjust = self._redis.register_script(_ADJUST)

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        args: list[float | int] = [WINDOW_MS, EPSILON_MS]
        for bucket in buckets:
            args += [bucket.interval_ms, bucket.charge]
        keys = [f"{self.ns}:rl:{b.key}" for b in buckets]
        try:
            out = await self._acquire(keys=keys, args=args)
        except RedisError as exc:
            raise AccessUnavailableError(
                f"the rate-limit store (Redis) cannot be reached: {exc}"
            ) from exc
        values = [float(v) for v in out]
        ahead = [(values[1 + 2 * i], values[2 + 2 * i]) for i in range(len(buckets))]
        return decide(buckets, ahead)

    async def adjust(self, bucket: Bucket, delta: int) -> None:
        try:
            await self._adjust(
                keys=[f"{self.ns}:rl:{bucket.key}"], args=[bucket.interval_ms, delta]
            )
        except RedisError as exc:
            raise AccessUnavailableError(
                f"the rate-limit store (Redis) cannot be reached: {exc}"
            ) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()
