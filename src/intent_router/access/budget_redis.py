"""The budget ledger shared by router replicas through Redis: one Lua script per operation.

Each account (a key's or team's window, see :mod:`intent_router.access.budget`) is three
Redis keys: ``{ns}:{account}`` (a hash: ``used`` and ``reserved``, integer nano-dollars),
``…:held`` (reservation id → amount) and ``…:exp`` (reservation id → expiry time, a sorted
set). Every script first drops the account's expired reservations, then acts; Redis runs a
script alone, so the check and the change cannot interleave with another replica's. The
keys expire one period after their window ends. Python never reads a value to write it
back.

A Redis that cannot be reached fails closed: the request is refused (503) rather than
served without a budget check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intent_router.access.budget import (
    PERIOD_S,
    Budget,
    BudgetLedger,
    Clock,
    Reservation,
    TeamBudget,
    Usage,
    exceeded,
    to_nano,
    to_usd,
    window,
)
from intent_router.errors import AccessUnavailableError

_PURGE = """
local function purge(acct, held, exp, now)
  local old = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
  for _, rid in ipairs(old) do
    local amount = redis.call('HGET', held, rid)
    if amount then
      redis.call('HINCRBY', acct, 'reserved', -tonumber(amount))
      redis.call('HDEL', held, rid)
    end
    redis.call('ZREM', exp, rid)
  end
end
"""

RESERVE = (
    _PURGE
    + """
-- KEYS: acct, held, exp per budget. ARGV: now, expires, id, amount, then per budget
-- its limit (-1: none) and the time its keys expire.
local now, expires, id, amount = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local n = #KEYS / 3
for i = 1, n do
  local acct = KEYS[3 * i - 2]
  purge(acct, KEYS[3 * i - 1], KEYS[3 * i], now)
  local limit = tonumber(ARGV[3 + 2 * i])
  if limit >= 0 then
    local used = tonumber(redis.call('HGET', acct, 'used') or '0')
    local reserved = tonumber(redis.call('HGET', acct, 'reserved') or '0')
    if used + reserved + amount > limit then
      return {i, used, reserved}
    end
  end
end
for i = 1, n do
  local acct, held, exp = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HINCRBY', acct, 'reserved', amount)
  redis.call('HSET', held, id, amount)
  redis.call('ZADD', exp, expires, id)
  local at = ARGV[4 + 2 * i]
  redis.call('EXPIREAT', acct, at)
  redis.call('EXPIREAT', held, at)
  redis.call('EXPIREAT', exp, at)
end
return {0, 0, 0}
"""
)

SETTLE = """
-- KEYS: acct, held, exp per budget. ARGV: id, actual, then per budget its keys' expiry.
-- Release is a settle of 0. A reservation that expired meanwhile is gone; the spend counts.
local id, actual = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS / 3 do
  local acct, held, exp = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local amount = redis.call('HGET', held, id)
  if amount then
    redis.call('HINCRBY', acct, 'reserved', -tonumber(amount))
    redis.call('HDEL', held, id)
    redis.call('ZREM', exp, id)
  end
  if actual > 0 then
    redis.call('HINCRBY', acct, 'used', actual)
    redis.call('EXPIREAT', acct, ARGV[2 + i])
  end
end
return 1
"""

USAGE = (
    _PURGE
    + """
-- KEYS: acct, held, exp per budget. ARGV: now. Returns used, reserved per budget.
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 3 do
  local acct = KEYS[3 * i - 2]
  purge(acct, KEYS[3 * i - 1], KEYS[3 * i], now)
  out[#out + 1] = tonumber(redis.call('HGET', acct, 'used') or '0')
  out[#out + 1] = tonumber(redis.call('HGET', acct, 'reserved') or '0')
end
return out
"""
)


class RedisBudgetLedger(BudgetLedger):
    """Accounts in Redis, shared by every replica pointed at the same ``url``."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "intent-router:access:budget",
        teams: Mapping[str, TeamBudget] | None = None,
        reservation_ttl_s: float = 900.0,
        op_timeout_s: float = 2.0,
        connect_timeout_s: float = 5.0,
        max_connections: int = 32,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(teams=teams, reservation_ttl_s=reservation_ttl_s, clock=clock)
        self.url = url
        self.ns = namespace
        # A bounded pool: a burst waits for a connection instead of opening hundreds. The
        # timeouts are generous (a loaded event loop is slow to connect); a Redis that is
        # down refuses connections at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=connect_timeout_s,
            socket_timeout=op_timeout_s, socket_connect_timeout=connect_timeout_s,
        )  # fmt: skip
        self._redis = aioredis.Redis(connection_pool=pool)
        self._reserve_script = self._redis.register_script(RESERVE)
        self._settle_script = self._redis.register_script(SETTLE)
        self._usage_script = self._redis.register_script(USAGE)

    def _keys(self, accounts: Sequence[str]) -> list[str]:
        keys = []
        for account in accounts:
            base = f"{self.ns}:{account}"
            keys += [base, f"{base}:held", f"{base}:exp"]
        return keys

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA (the client loads the script on a NOSCRIPT); Redis errors fail closed."""
        try:
            return await script(keys=keys, args=args)
        except (TimeoutError, RedisError, OSError) as exc:
            raise AccessUnavailableError(
                f"the budget store at {self.url} cannot be reached ({type(exc).__name__}: "
                f"{exc}); requests with a key are refused until it answers"
            ) from exc

    async def _reserve(self, reservation: Reservation, now: float) -> None:
        amount = to_nano(reservation.amount_usd)
        expires = now + self.reservation_ttl_s
        args: list[Any] = [repr(now), repr(expires), reservation.id, amount]
        for budget in reservation.budgets:
            limit = to_nano(budget.limit_usd) if budget.limit_usd is not None else -1
            args += [limit, _expire_at(budget, now, expires)]
        keys = self._keys(reservation.accounts)
        failed, used, held = await self._run(self._reserve_script, keys, args)
        if int(failed):
            raise exceeded(reservation.budgets[int(failed) - 1], int(used), int(held), now)

    async def _settle(self, reservation: Reservation, actual_usd: float, now: float) -> None:
        args: list[Any] = [reservation.id, to_nano(actual_usd)]
        args += [_expire_at(b, now, now) for b in reservation.budgets]
        await self._run(self._settle_script, self._keys(reservation.accounts), args)

    async def _usage(self, budgets: Sequence[Budget], now: float) -> list[Usage]:
        keys = self._keys([b.account(now) for b in budgets])
        flat = await self._run(self._usage_script, keys, [repr(now)])
        return [
            Usage(b, to_usd(int(flat[2 * i])), to_usd(int(flat[2 * i + 1])))
            for i, b in enumerate(budgets)
        ]

    async def aclose(self) -> None:
        await self._redis.aclose(close_connection_pool=True)


def _expire_at(budget: Budget, now: float, held_until: float) -> int:
    """An account's keys live one period past their window's end (and past any hold)."""
    ends = window(budget.period, now)[1]
    return int(max(ends + PERIOD_S[budget.period], held_until + 60))
