"""Worst-case pricing, the downgrade at a share of the budget, the PII gate, and the
access stage's hold/settle over a ledger (no HTTP)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from intent_router.access import Principal
from intent_router.access.budget_memory import MemoryBudgetLedger
from intent_router.access.cost import cut_stream_usd, worst_case_usd
from intent_router.access.downgrade import downgrade
from intent_router.access.pii_gate import PiiGate, found_kinds
from intent_router.access.principal import ANONYMOUS
from intent_router.access.spending import Spending, team_budgets
from intent_router.errors import BudgetExceededError, ModelsFileError, PiiNotApprovedError
from intent_router.models import ModelsConfig
from intent_router.providers import ChatRequest, ChatResponse
from intent_router.providers.messages import Message
from intent_router.routing.schema import Route


def models(**overrides: Any) -> ModelsConfig:
    def spec(price_in: float, price_out: float, **extra: Any) -> dict[str, Any]:
        return {"provider": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m",
                "price_per_mtok_input": price_in, "price_per_mtok_output": price_out,
                **extra}  # fmt: skip

    data: dict[str, Any] = {
        "models": {
            "big": spec(10.0, 30.0),
            "mid": spec(1.0, 4.0, pii_approved=True),
            "small": spec(0.1, 0.4),
        },
        "default_chain": ["big", "mid", "small"],
        **overrides,
    }
    return ModelsConfig.model_validate(data)


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest([Message("user", text)], **kwargs)


ALICE = Principal(key_id="key_a", name="alice", team="ops", budget_usd=1.0, period="1d")


def test_worst_case_is_the_dearest_model_at_max_tokens() -> None:
    cfg = models()
    request = ask("x" * 400, max_tokens=100, n=2)  # ~104 input tokens, 200 output
    assert request.estimated_input_tokens() == 104
    assert worst_case_usd(request, ["small", "big"], cfg) == pytest.approx(
        (104 * 10.0 + 200 * 30.0) / 1e6
    )
    default = ask("x" * 400)  # no max_tokens: the configured default output
    assert worst_case_usd(default, ["mid"], cfg) == pytest.approx((104 + 1024 * 4.0) / 1e6)
    assert cut_stream_usd(request, "mid", cfg, output_chars=40) == pytest.approx(
        (104 * 1.0 + 10 * 4.0) / 1e6
    )


def test_downgrade_keeps_the_cheapest_or_the_budget_chain() -> None:
    cfg = models()
    chain = ["big", "mid", "small"]
    assert downgrade(chain, [], cfg, share=0.79, budget="key 'a'") == (chain, [])
    kept, skipped = downgrade(chain, [], cfg, share=0.8, budget="key 'a'")
    assert kept == ["small"]
    assert skipped == [
        ("big", "key 'a' is 80% used (downgrade at 80%): dearer than small"),
        ("mid", "key 'a' is 80% used (downgrade at 80%): dearer than small"),
    ]
    kept, skipped = downgrade(chain, ["mid"], cfg, share=0.9, budget="key 'a'")
    assert kept == ["mid"]
    assert [m for m, _ in skipped] == ["big", "small"]
    assert "the route's budget_chain" in skipped[0][1]
    later = models(budgets={"downgrade_at": 0.95})
    assert downgrade(chain, [], later, share=0.9, budget="key 'a'")[0] == chain


def test_budget_chain_is_checked_against_the_models_file() -> None:
    route = Route(name="billing", utterances=["refund"], chain=["big"], budget_chain=["tiny"])
    with pytest.raises(ModelsFileError, match="route 'billing' names unknown model 'tiny'"):
        models().check_routes([route])
    with pytest.raises(ValidationError, match="a route of kind none takes no budget_chain"):
        Route(name="none", kind="none", utterances=["hi"], budget_chain=["small"])


def test_pii_gate_keeps_only_approved_models() -> None:
    gate = PiiGate.from_models(models())
    assert gate.enabled and gate.approved == ("mid",)
    mail = ask("my email is jane.doe@example.com, why was I charged twice?")
    assert found_kinds(mail) == ["EMAIL"]
    gated = gate.apply(mail, ["big", "mid", "small"])
    assert gated.chain == ["mid"]
    assert [m for m, _ in gated.skipped] == ["big", "small"]
    assert gated.skipped[0][1].startswith("personal data in the request (EMAIL)")
    assert gated.record == {"personal_data": ["EMAIL"], "skipped": ["big", "small"]}
    plain = gate.apply(ask("why was I charged twice in 2024?"), ["big", "small"])
    assert plain.chain == ["big", "small"] and plain.record == {"personal_data": []}
    with pytest.raises(PiiNotApprovedError) as info:
        gate.apply(mail, ["big", "small"])
    assert str(info.value) == (
        "the request contains personal data (EMAIL) and no model of its chain [big, small] "
        "is approved for it (pii_approved: true); approved models: mid"
    )


def test_pii_gate_auto_is_off_until_a_model_is_approved() -> None:
    plain = {"provider": "openai", "base_url": "http://x", "model": "m"}
    cfg = ModelsConfig.model_validate({"models": {"a": plain}, "default_chain": ["a"]})
    gate = PiiGate.from_models(cfg)
    assert not gate.enabled
    assert gate.apply(ask("call me at +1 415 555 0100"), ["a"]).record is None
    forced = ModelsConfig.model_validate(
        {"models": {"a": plain}, "default_chain": ["a"], "pii_gate": "on"}
    )
    with pytest.raises(PiiNotApprovedError, match="approved models: none"):
        PiiGate.from_models(forced).apply(ask("mail me: jane.doe@example.com"), ["a"])


def response(cost: float) -> ChatResponse:
    return ChatResponse(text="ok", finish_reason="stop", input_tokens=1, output_tokens=1,
                        model="small", upstream_model="m", provider="openai", route=None,
                        cost_usd=cost, latency_ms=1.0, attempts=())  # fmt: skip


async def test_hold_downgrades_then_reserves_and_settle_counts_once() -> None:
    cfg = models(team_limits={"ops": {"rpm": 60, "budget_usd": 5.0, "period": "7d"}})
    ledger = MemoryBudgetLedger(teams=team_budgets(cfg), clock=time.time)
    spending = Spending(ledger, cfg)
    request = ask("hello", max_tokens=10)  # ~5 input tokens
    hold = await spending.hold(ALICE, request, ["big", "mid", "small"])
    assert hold.chain == ["big", "mid", "small"] and hold.skipped == []
    assert hold.record["budget"]["reserved_usd"] == pytest.approx((5 * 10 + 10 * 30) / 1e6)
    await spending.settle(hold, request, response(0.85))
    await spending.settle(hold, request, response(0.85))  # once only
    assert await ledger.spend("key", "key_a", "1d") == 0.85
    assert await ledger.spend("team", "ops", "7d") == 0.85
    low = await spending.hold(ALICE, request, ["big", "mid", "small"])
    assert low.chain == ["small"]
    assert low.record["budget"]["downgraded"] is True
    assert low.record["budget"]["share"] == pytest.approx(0.85, abs=1e-3)
    await spending.settle(low, request, None)  # failed: released
    assert (await ledger.usage(ALICE))[0].reserved_usd == 0.0
    pinned = await spending.hold(ALICE, request, ["big"], pinned=True)
    assert pinned.chain == ["big"]  # the client's choice stands
    await spending.settle(pinned, request, None, model="big", output_chars=400)
    assert await ledger.spend("key", "key_a", "1d") == pytest.approx(
        0.85 + (5 * 10 + 100 * 30) / 1e6
    )
    await spending.settle(await spending.hold(ALICE, request, ["small"]), request, response(0.15))
    with pytest.raises(BudgetExceededError, match="key 'alice'"):
        await spending.hold(ALICE, request, ["small"])


async def test_anonymous_requests_are_gated_but_not_budgeted() -> None:
    spending = Spending(MemoryBudgetLedger(), models())
    hold = await spending.hold(ANONYMOUS, ask("hi"), ["big", "small"])
    assert hold.chain == ["big", "small"] and hold.reservation.empty
    assert "budget" not in hold.record
    with pytest.raises(PiiNotApprovedError):
        await spending.hold(ANONYMOUS, ask("my SSN is 123-45-6789"), ["big", "small"])
