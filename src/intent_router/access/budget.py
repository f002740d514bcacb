"""Budgets that cannot be overspent: reserve the worst case, settle to the real cost.

A request's caller (a :class:`~intent_router.access.Principal`) may have two budgets: its
key's (``budget_usd`` per ``period``) and its team's. Before dispatch the request's worst
case is *reserved* against both at once (both or neither); after the answer the
reservation is *settled* to the real cost (the rest released), or *released* when the
request failed. The check and the reservation are one atomic step (one lock-free sync
block in memory, one Lua script in Redis), so concurrent requests can never together pass
a budget: what was used plus what is reserved never exceeds the limit, and a request
settles at most its reservation unless its real usage beat the estimate.

**Periods** are aligned UTC windows: ``1d`` starts at midnight, ``7d`` on Monday
midnight, ``30d`` every 30 days since the Unix epoch (not calendar months). The window's
number is part of every account's key, so a new period starts from zero atomically, with
nothing to reset. A reservation is settled in the window it was made in.

**Reservations expire** after ``reservation_ttl_s`` (default 900 s): if a process dies
between reserve and settle, its reservations hold budget at most that long.

Spend is tracked for every key and team, with or without a limit, so ``keys list`` can
show it (:meth:`BudgetLedger.spend`). Amounts are kept as integer nano-dollars (exact in
Lua's doubles and Redis' integers).
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from intent_router.access.principal import Principal
from intent_router.errors import BudgetExceededError

Period = Literal["1d", "7d", "30d"]
Scope = Literal["key", "team"]
PERIODS: tuple[Period, ...] = ("1d", "7d", "30d")
DAY_S = 86_400
PERIOD_S: dict[str, int] = {"1d": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}
_OFFSET_S = {"1d": 0, "7d": 4 * DAY_S, "30d": 0}  # 1970-01-05 was the first Monday
DEFAULT_PERIOD: Period = "30d"  # where a key without a budget counts its spend
NANO = 1_000_000_000
Clock = Callable[[], float]


def to_nano(usd: float) -> int:
    return round(usd * NANO)


def to_usd(nano: int) -> float:
    return nano / NANO


def window(period: str, now: float) -> tuple[int, float]:
    """The number of the ``period`` window holding ``now`` and the time it ends."""
    length, offset = PERIOD_S[period], _OFFSET_S[period]
    number = int((now - offset) // length)
    return number, offset + (number + 1) * length


@dataclass(frozen=True)
class Budget:
    """One account: a key's or a team's spend per period, with its limit (None: none)."""

    scope: Scope
    ident: str  # key id, or team name
    label: str  # what a person calls it: the key's name, or the team
    limit_usd: float | None
    period: Period

    @property
    def name(self) -> str:
        return f"{self.scope} '{self.label}'"

    def describe(self) -> str:
        limit = f"{self.limit_usd:.2f} USD" if self.limit_usd is not None else "no limit"
        return f"{self.name} ({limit} per {self.period})"

    def account(self, now: float) -> str:
        """The account's key for the window holding ``now`` (the period id is part of it)."""
        return f"{self.scope}:{self.ident}:{self.period}:{window(self.period, now)[0]}"


@dataclass(frozen=True)
class TeamBudget:
    limit_usd: float
    period: Period = DEFAULT_PERIOD


@dataclass(frozen=True)
class Reservation:
    """Budget held for one request; give it back with ``settle`` or ``release``."""

    id: str
    amount_usd: float
    budgets: tuple[Budget, ...]
    accounts: tuple[str, ...]  # one per budget, in the window of the reservation

    @property
    def empty(self) -> bool:
        return not self.budgets


NO_RESERVATION = Reservation(id="", amount_usd=0.0, budgets=(), accounts=())
"""What an anonymous request holds: nothing to settle."""


@dataclass(frozen=True)
class Usage:
    """One budget's current window: settled spend and what in-flight requests hold."""

    budget: Budget
    used_usd: float
    reserved_usd: float

    @property
    def share(self) -> float:
        """The part of the limit used or held (0 without a limit)."""
        limit = self.budget.limit_usd
        if limit is None:
            return 0.0
        if limit <= 0:
            return 1.0
        return (self.used_usd + self.reserved_usd) / limit


def exceeded(budget: Budget, used_nano: int, reserved_nano: int, now: float) -> BudgetExceededError:
    """The 429 naming the budget, with the seconds until its window ends."""
    held = to_usd(used_nano + reserved_nano)
    ends = window(budget.period, now)[1]
    return BudgetExceededError(
        f"budget of {budget.describe()} is spent: {held:.2f} reserved or used",
        budget=budget.name,
        retry_after=max(1.0, round(ends - now)),
    )


class BudgetLedger(ABC):
    """Reserve, settle and release against the key's and the team's budgets.

    ``teams`` gives team budgets by team name; a team without one is tracked, unlimited.
    """

    def __init__(
        self,
        *,
        teams: Mapping[str, TeamBudget] | None = None,
        reservation_ttl_s: float = 900.0,
        clock: Clock = time.time,
    ) -> None:
        self.teams = dict(teams or {})
        self.reservation_ttl_s = reservation_ttl_s
        self.clock = clock

    def budgets_of(self, principal: Principal) -> tuple[Budget, ...]:
        """The accounts a request of ``principal`` counts against (none when anonymous)."""
        if principal.anonymous:
            return ()
        period = cast(Period, principal.period or DEFAULT_PERIOD)
        budgets = [Budget("key", principal.key_id, principal.name, principal.budget_usd, period)]
        if principal.team:
            team = self.teams.get(principal.team)
            limit, team_period = (team.limit_usd, team.period) if team else (None, period)
            budgets.append(Budget("team", principal.team, principal.team, limit, team_period))
        return tuple(budgets)

    async def reserve(self, principal: Principal, worst_case_usd: float) -> Reservation:
        """Hold ``worst_case_usd`` against every budget of ``principal``, or raise
        :class:`BudgetExceededError` naming the first budget that cannot cover it."""
        budgets = self.budgets_of(principal)
        if not budgets:
            return NO_RESERVATION
        now = self.clock()
        reservation = Reservation(
            id=uuid.uuid4().hex,
            amount_usd=worst_case_usd,
            budgets=budgets,
            accounts=tuple(b.account(now) for b in budgets),
        )
        await self._reserve(reservation, now)
        return reservation

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Count ``actual_usd`` as spent and give back what the reservation held."""
        if not reservation.empty:
            await self._settle(reservation, max(0.0, actual_usd), self.clock())

    async def release(self, reservation: Reservation) -> None:
        """The request failed before it cost anything: give the whole reservation back."""
        await self.settle(reservation, 0.0)

    async def usage(self, principal: Principal) -> list[Usage]:
        """Used and reserved now, per budget of ``principal``."""
        budgets = self.budgets_of(principal)
        return await self._usage(budgets, self.clock()) if budgets else []

    async def spend(self, scope: Scope, ident: str, period: Period = DEFAULT_PERIOD) -> float:
        """USD settled by key id (or team name) ``ident`` in the current ``period`` window.

        The reader behind ``keys list``; reservations in flight are not counted.
        """
        budget = Budget(scope, ident, ident, None, period)
        (usage,) = await self._usage((budget,), self.clock())
        return usage.used_usd

    @abstractmethod
    async def _reserve(self, reservation: Reservation, now: float) -> None: ...

    @abstractmethod
    async def _settle(self, reservation: Reservation, actual_usd: float, now: float) -> None: ...

    @abstractmethod
    async def _usage(self, budgets: Sequence[Budget], now: float) -> list[Usage]: ...

    async def aclose(self) -> None:  # noqa: B027 - ledgers without resources keep it
        """Persist what is pending and release connections."""


class NullLedger(BudgetLedger):
    """Budgets off (no keys): every reservation is empty, nothing is counted."""

    def budgets_of(self, principal: Principal) -> tuple[Budget, ...]:
        return ()

    async def _reserve(self, reservation: Reservation, now: float) -> None:
        return None

    async def _settle(self, reservation: Reservation, actual_usd: float, now: float) -> None:
        return None

    async def _usage(self, budgets: Sequence[Budget], now: float) -> list[Usage]:
        return [Usage(b, 0.0, 0.0) for b in budgets]
