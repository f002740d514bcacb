"""Requests- and tokens-per-minute limits: sliding-window logs in memory or in Redis.

**Why a sliding-window log.** A limit of ``L`` per minute means what people read into it:
in *any* 60 s, at most ``L`` requests (or tokens) are admitted. Each bucket keeps the
admitted units with their time; a request fits when what is still inside the window plus
its own cost stays within ``L``. With RPM 20 the 21st request of any minute is refused,
and its ``Retry-After`` is the exact moment enough old units leave the window. The
alternatives were weighed: GCRA (a leaky bucket in one number) hands one unit back
every ``60/L`` s, so 21 requests spread over a few seconds all pass, which is not "20 per
minute" to a caller counting; a sliding-window *counter* (two fixed windows, weighted)
only estimates. The log costs one entry per admitted request per bucket, each added once
and removed once (a running sum per bucket keeps the check O(1) amortised), which is
bounded by the limits themselves.

Several buckets (a key's RPM and TPM) are checked together and charged only if every one
fits: a refused request costs nothing. A request costing more than a whole limit (a
prompt larger than the TPM) is charged as the whole limit: it passes only into an empty
window. After the answer an entry's cost may be corrected (:meth:`RateLimiter.adjust`:
the real token usage replaces the estimate).

The Redis limiter runs each operation as one Lua script (check-all-then-charge-all is
atomic across replicas) and takes ``now`` from Redis' ``TIME``, so replicas whose clocks
differ still agree. Per bucket, ``NS:rl:<bucket>`` is a sorted set of entry ids scored by
admission time (ms), ``…:costs`` a hash of their costs and ``…:sum`` the running sum; all
three expire a window after their last write.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intent_router.errors import AccessUnavailableError

WINDOW_MS = 60_000


@dataclass(frozen=True)
class Bucket:
    """One limit a request is charged against: ``key`` names it (``key:<id>:rpm``)."""

    key: str
    limit: int  # units per window
    cost: int  # units this request takes (charged at most ``limit``)

    @property
    def charge(self) -> int:
        return max(0, min(self.cost, self.limit))


@dataclass(frozen=True)
class BucketState:
    """A bucket as the answer's ``x-ratelimit-*`` headers report it."""

    limit: int
    remaining: int
    reset_s: float  # until the oldest unit counted leaves the window (remaining rises)
    retry_after_s: float  # 0 when the request fitted


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    states: list[BucketState]  # in the order of the buckets asked
    entry: str = ""  # the id of this request's entries, to correct them later

    @property
    def retry_after_s(self) -> float:
        return max((s.retry_after_s for s in self.states), default=0.0)


def retry_ms(entries: Sequence[tuple[int, int]], used: int, charge: int, limit: int) -> int:
    """Until enough of ``entries`` (time ms relative to now's window start, cost), oldest
    first, have left the window for ``charge`` to fit (0: it fits now)."""
    if used + charge <= limit:
        return 0
    freed = 0
    for age_end, cost in entries:
        freed += cost
        if used - freed + charge <= limit:
            return age_end
    return WINDOW_MS


class RateLimiter(ABC):
    """Charges buckets; shared by every request of the process (or, in Redis, of all)."""

    @abstractmethod
    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Charge every bucket if every one fits, else none."""

    @abstractmethod
    async def adjust(self, bucket: Bucket, entry: str, cost: int) -> None:
        """Make this request's entry in ``bucket`` cost ``cost`` (never refusing)."""

    async def aclose(self) -> None:  # noqa: B027 - the memory limiter holds nothing
        """Release connections."""


@dataclass
class _Log:
    entries: deque[tuple[int, int, str]]  # (time ms, cost, entry id), oldest first
    used: int = 0


class MemoryRateLimiter(RateLimiter):
    """One process: the logs in a dict (an asyncio step between awaits is atomic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._logs: dict[str, _Log] = {}

    def _log(self, key: str, now: int) -> _Log:
        log = self._logs.setdefault(key, _Log(deque()))
        while log.entries and log.entries[0][0] <= now - WINDOW_MS:
            log.used -= log.entries.popleft()[1]
        return log

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        now = round(self.clock() * 1000)
        logs = [self._log(b.key, now) for b in buckets]
        allowed = all(log.used + b.charge <= b.limit for b, log in zip(buckets, logs, strict=True))
        entry = secrets.token_hex(6)
        states = []
        for bucket, log in zip(buckets, logs, strict=True):
            if allowed:
                log.entries.append((now, bucket.charge, entry))
                log.used += bucket.charge
            ends = [(t + WINDOW_MS - now, cost) for t, cost, _ in log.entries]
            retry = 0 if allowed else retry_ms(ends, log.used, bucket.charge, bucket.limit)
            reset = ends[0][0] if ends else 0
            states.append(BucketState(bucket.limit, max(0, bucket.limit - log.used),
                                      reset / 1000, retry / 1000))  # fmt: skip
        if len(self._logs) > 10_000:  # forget buckets whose window emptied
            self._logs = {k: v for k, v in self._logs.items() if self._log(k, now).entries}
        return Verdict(allowed, states, entry)

    async def adjust(self, bucket: Bucket, entry: str, cost: int) -> None:
        log = self._log(bucket.key, round(self.clock() * 1000))
        for i, (t, old, eid) in enumerate(log.entries):
            if eid == entry:
                log.entries[i] = (t, cost, eid)
                log.used += cost - old
                return


# KEYS: (log, sum, costs) per bucket; ARGV: window_ms, entry id, then (limit, charge) per
# bucket. Returns {allowed, then per bucket: used, reset_ms, retry_ms}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, entry = tonumber(ARGV[1]), ARGV[2]
local n = #KEYS / 3
local used, allowed = {}, 1
for i = 1, n do
  local log, sum, costs = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local total = tonumber(redis.call('GET', sum) or '0')
  local old = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
  if #old > 0 then
    for _, id in ipairs(old) do
      total = total - tonumber(redis.call('HGET', costs, id) or '0')
      redis.call('HDEL', costs, id)
    end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
    redis.call('SET', sum, total, 'PX', window + 1000)
  end
  used[i] = total
  if total + tonumber(ARGV[2 + 2 * i]) > tonumber(ARGV[1 + 2 * i]) then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local log, sum, costs = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local limit, charge = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  if allowed == 1 then
    redis.call('ZADD', log, now, entry)
    redis.call('HSET', costs, entry, charge)
    used[i] = used[i] + charge
    redis.call('SET', sum, used[i], 'PX', window + 1000)
    redis.call('PEXPIRE', log, window + 1000)
    redis.call('PEXPIRE', costs, window + 1000)
  end
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local reset = 0
  if #oldest > 0 then reset = tonumber(oldest[2]) + window - now end
  local retry = 0
  if used[i] + charge > limit then
    retry = window
    local freed = 0
    local all = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    for j = 1, #all, 2 do
      freed = freed + tonumber(redis.call('HGET', costs, all[j]) or '0')
      if used[i] - freed + charge <= limit then
        retry = tonumber(all[j + 1]) + window - now
        break
      end
    end
  end
  table.insert(out, used[i])
  table.insert(out, reset)
  table.insert(out, retry)
end
return out
"""

# KEYS: log, sum, costs; ARGV: entry id, new cost. An entry that left the window is gone.
_ADJUST = """
local old = redis.call('HGET', KEYS[3], ARGV[1])
if not old then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[2], tonumber(ARGV[2]) - tonumber(old))
return 1
"""


class RedisRateLimiter(RateLimiter):
    """Replicas: the logs in Redis under ``NS:rl:<bucket>``, one Lua script per operation."""

    def __init__(
        self, url: str, *, namespace: str = "intent-router:access", op_timeout_s: float = 1.0
    ) -> None:
        self.ns = namespace
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._adjust = self._redis.register_script(_ADJUST)

    def _keys(self, bucket: Bucket) -> list[str]:
        log = f"{self.ns}:rl:{bucket.key}"
        return [log, f"{log}:sum", f"{log}:costs"]

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        entry = secrets.token_hex(6)
        keys: list[str] = []
        args: list[int | str] = [WINDOW_MS, entry]
        for bucket in buckets:
            keys += self._keys(bucket)
            args += [bucket.limit, bucket.charge]
        try:
            out = [int(v) for v in await self._acquire(keys=keys, args=args)]
        except RedisError as exc:
            raise _unavailable(exc) from exc
        states = [
            BucketState(
                b.limit,
                max(0, b.limit - out[1 + 3 * i]),
                out[2 + 3 * i] / 1000,
                out[3 + 3 * i] / 1000,
            )
            for i, b in enumerate(buckets)
        ]
        return Verdict(out[0] == 1, states, entry)

    async def adjust(self, bucket: Bucket, entry: str, cost: int) -> None:
        try:
            await self._adjust(keys=self._keys(bucket), args=[entry, cost])
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()


def _unavailable(exc: RedisError) -> AccessUnavailableError:
    return AccessUnavailableError(f"the rate-limit store (Redis) cannot be reached: {exc}")
