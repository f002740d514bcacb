"""The access stage's money side: PII gate, downgrade, then reserve the worst case.

:meth:`Spending.hold` runs before dispatch, after routing and the cache (a cached answer
costs nothing): it narrows the chain (only ``pii_approved`` models when personal data is
found; then cheaper models past ``budgets.downgrade_at`` of a budget, among those the gate
let through), then reserves the worst case of what is left. :meth:`Spending.settle` runs
when the answer is complete (the real cost), the request failed (nothing), or a stream
was cut (what was sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intent_router.access.budget import (
    NO_RESERVATION,
    BudgetLedger,
    NullLedger,
    Reservation,
    TeamBudget,
)
from intent_router.access.budget_memory import MemoryBudgetLedger, spend_file_for
from intent_router.access.budget_redis import RedisBudgetLedger
from intent_router.access.cost import cut_stream_usd, worst_case_usd
from intent_router.access.downgrade import downgrade
from intent_router.access.pii_gate import PiiGate
from intent_router.access.principal import Principal
from intent_router.models import ModelsConfig
from intent_router.providers import ChatRequest, ChatResponse


@dataclass
class Hold:
    """What :meth:`Spending.hold` decided for one request."""

    chain: list[str]
    reservation: Reservation = NO_RESERVATION
    skipped: list[tuple[str, str]] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)  # decision-row keys
    settled: bool = False


def team_budgets(models: ModelsConfig) -> dict[str, TeamBudget]:
    """The ledger's team budgets, from the models file's ``team_limits``."""
    return {
        name: TeamBudget(spec.budget_usd, spec.period)
        for name, spec in models.team_limits.items()
        if spec.budget_usd is not None
    }


class Spending:
    def __init__(self, ledger: BudgetLedger, models: ModelsConfig) -> None:
        self.ledger = ledger
        self.models = models
        self.gate = PiiGate.from_models(models)

    async def hold(
        self,
        principal: Principal,
        request: ChatRequest,
        chain: Sequence[str],
        *,
        budget_chain: Sequence[str] = (),
        pinned: bool = False,
    ) -> Hold:
        """Narrow ``chain`` and reserve its worst case; raises PiiNotApprovedError (400)
        or BudgetExceededError (429) before any upstream is called."""
        gated = self.gate.apply(request, chain)  # first: a downgrade never empties it
        hold = Hold(gated.chain, skipped=list(gated.skipped))
        if gated.record is not None:
            hold.record["pii_gate"] = gated.record
        budgets = self.ledger.budgets_of(principal)
        if not pinned and any(b.limit_usd is not None for b in budgets):
            usage = max(await self.ledger.usage(principal), key=lambda u: u.share)
            cheaper = [m for m in budget_chain if gated.allows(m)]
            kept, skipped = downgrade(
                hold.chain, cheaper, self.models, share=usage.share, budget=usage.budget.name
            )
            hold.record["budget"] = {
                "name": usage.budget.name,
                "share": round(usage.share, 4),
                "downgraded": kept != hold.chain,
            }
            hold.chain, hold.skipped = kept, hold.skipped + skipped
        if budgets:
            worst = worst_case_usd(request, hold.chain, self.models)
            hold.reservation = await self.ledger.reserve(principal, worst)
            hold.record.setdefault("budget", {})["reserved_usd"] = round(worst, 8)
        return hold

    async def settle(
        self,
        hold: Hold,
        request: ChatRequest,
        response: ChatResponse | None,
        *,
        model: str | None = None,
        output_chars: int = 0,
    ) -> None:
        """Count what the request cost, once: the response's cost; without a response, a
        stream of ``model`` cut after ``output_chars`` characters; else nothing."""
        if hold.settled:
            return
        hold.settled = True
        if response is not None:
            await self.ledger.settle(hold.reservation, response.cost_usd)
        elif model is not None:  # a stream that opened: its input was paid for
            cost = cut_stream_usd(request, model, self.models, output_chars)
            await self.ledger.settle(hold.reservation, cost)
        else:
            await self.ledger.release(hold.reservation)


def open_ledger(
    models: ModelsConfig,
    *,
    keys_file: Path | None = None,
    redis_url: str | None = None,
    namespace: str = "intent-router:access",
) -> BudgetLedger:
    """The ledger beside the keys: in Redis when the keys are (replicas share budgets,
    under ``{namespace}:budget``), else in memory persisted beside the keys file; off
    (null) without keys."""
    teams = team_budgets(models)
    ttl = models.budgets.reservation_ttl_s
    if redis_url is not None:
        return RedisBudgetLedger(
            redis_url, namespace=f"{namespace}:budget", teams=teams, reservation_ttl_s=ttl
        )
    if keys_file is not None:
        return MemoryBudgetLedger(spend_file_for(keys_file), teams=teams, reservation_ttl_s=ttl)
    return NullLedger()
