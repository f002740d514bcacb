"""The budget ledger of one router process, persisted to a JSON file.

Every operation is plain synchronous code between two awaits, so on one event loop it is
atomic without a lock: no other request can run between the check and the reservation.

**Persistence.** With a ``path`` (``intent-router serve`` puts it beside the keys file:
``keys.json`` → ``keys.spend.json``), the settled spend of every account is written there
atomically (a temporary file renamed over the old one), at most once per ``flush_s``
(default 1 s) after a change and on shutdown, and read back at start-up. A crash loses at
most the last ``flush_s`` of spend; reservations are never persisted (their requests died
with the process). Accounts of windows that ended more than one period ago are dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

log = logging.getLogger(__name__)
SPEND_SUFFIX = ".spend.json"


def spend_file_for(keys_file: str | Path) -> Path:
    """Where the spend of the keys in ``keys_file`` is kept: ``NAME.spend.json`` beside it."""
    path = Path(keys_file)
    return path.with_name(path.stem + SPEND_SUFFIX)


@dataclass
class _Account:
    used: int = 0
    held: dict[str, tuple[int, float]] = field(default_factory=dict)  # id → (nano, expires)

    def purge(self, now: float) -> None:
        for rid in [rid for rid, (_, expires) in self.held.items() if expires <= now]:
            del self.held[rid]

    @property
    def reserved(self) -> int:
        return sum(amount for amount, _ in self.held.values())


class MemoryBudgetLedger(BudgetLedger):
    """Accounts in a dict; optionally persisted to ``path`` (see the module docstring)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        teams: Mapping[str, TeamBudget] | None = None,
        reservation_ttl_s: float = 900.0,
        flush_s: float = 1.0,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(teams=teams, reservation_ttl_s=reservation_ttl_s, clock=clock)
        self.path = Path(path) if path is not None else None
        self.flush_s = flush_s
        self._accounts: dict[str, _Account] = {}
        self._flush: asyncio.TimerHandle | None = None
        if self.path is not None and self.path.exists():
            self._load(self.path)

    # -- the three operations: sync code, no await between check and change -------------

    async def _reserve(self, reservation: Reservation, now: float) -> None:
        amount = to_nano(reservation.amount_usd)
        accounts = [self._account(a) for a in reservation.accounts]
        for budget, account in zip(reservation.budgets, accounts, strict=True):
            account.purge(now)
            if budget.limit_usd is None:
                continue
            if account.used + account.reserved + amount > to_nano(budget.limit_usd):
                raise exceeded(budget, account.used, account.reserved, now)
        for account in accounts:
            account.held[reservation.id] = (amount, now + self.reservation_ttl_s)

    async def _settle(self, reservation: Reservation, actual_usd: float, now: float) -> None:
        actual = to_nano(actual_usd)
        for name in reservation.accounts:
            account = self._account(name)
            account.held.pop(reservation.id, None)
            account.used += actual
        if actual:
            self._changed()

    async def _usage(self, budgets: Sequence[Budget], now: float) -> list[Usage]:
        out = []
        for budget in budgets:
            account = self._accounts.get(budget.account(now))
            if account is None:
                out.append(Usage(budget, 0.0, 0.0))
                continue
            account.purge(now)
            out.append(Usage(budget, to_usd(account.used), to_usd(account.reserved)))
        return out

    def _account(self, name: str) -> _Account:
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = _Account()
        return account

    # -- persistence ------------------------------------------------------------------

    def _changed(self) -> None:
        if self.path is None or self._flush is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._flush = loop.call_later(self.flush_s, self.save)

    def save(self) -> None:
        """Write the settled spend now (atomically); pending debounced writes are merged."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.path is None:
            return
        now = self.clock()
        spend = {
            name: account.used
            for name, account in sorted(self._accounts.items())
            if account.used and _current(name, now)
        }
        data = json.dumps({"version": 1, "saved_at": now, "spend_nano_usd": spend}, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        except OSError:
            log.exception("could not write the spend file %s", self.path)
            Path(tmp).unlink(missing_ok=True)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            spend = data["spend_nano_usd"]
            for name, used in spend.items():
                self._account(str(name)).used = int(used)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("spend file %s is unreadable (%s): spend starts from zero", path, exc)

    async def aclose(self) -> None:
        self.save()


def _current(account: str, now: float) -> bool:
    """Whether the account's window ended less than one period ago (worth keeping)."""
    try:
        _, period, number = account.rsplit(":", 2)
        return period in PERIOD_S and int(number) >= window(period, now)[0] - 1
    except ValueError:
        return False
