"""Budgets, the downgrade and the PII gate on the request path: the gateway driven with a
Principal (no HTTP, no keys), real encoder and index, the fake upstream on loopback
counting calls per model, ledgers in memory and in a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import SMALL_ROUTES
from tests.router_server import model

from intent_router.access import Principal
from intent_router.access.budget import BudgetLedger
from intent_router.access.budget_memory import MemoryBudgetLedger
from intent_router.access.budget_redis import RedisBudgetLedger
from intent_router.access.context import RequestAccess
from intent_router.config import Settings
from intent_router.dispatch import Dispatcher
from intent_router.embedding.encoder import Encoder
from intent_router.errors import BudgetExceededError, PiiNotApprovedError
from intent_router.gateway import Gateway
from intent_router.models import load_models
from intent_router.observability.metrics import Metrics
from intent_router.pipeline import spend, stages
from intent_router.providers import ChatRequest, Message, StreamDone
from intent_router.service import RouterService
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.cache_fixtures import redis_server  # noqa: F401 - a fixture
from intent_router.testing.redis_server import RedisServer

CHAT_Q = "hi there, how are you today"
CODE_Q = "write a python function that parses a date"
MATH_Q = "what is the derivative of x squared times sine x"
PRICES = {  # USD per million tokens, input / output: requests cost cents
    "strong-coder": (2000.0, 8000.0),
    "strong-reasoner": (2000.0, 8000.0),
    "cheap-general": (1000.0, 2000.0),
    "fast-small": (500.0, 1000.0),
}


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **kwargs)


def alice(budget: float = 0.50, name: str = "alice") -> Principal:
    return Principal(key_id=f"key_{name}", name=name, budget_usd=budget, period="1d")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Settings:
    folder = tmp_path_factory.mktemp("budgets")
    routes = folder / "routes"
    routes.mkdir()
    chains = {
        "code": ["strong-coder", "cheap-general", "fast-small"],
        "math": ["strong-reasoner", "cheap-general"],
        "chitchat": ["cheap-general"],
    }
    for name, fields in SMALL_ROUTES.items():
        body: dict[str, Any] = {"name": name, **fields, "chain": chains.get(name, fields["chain"])}
        if name == "math":
            body["budget_chain"] = ["fast-small"]
        (routes / f"{name}.yaml").write_text(yaml.safe_dump(body))
    config = {
        "default_chain": ["cheap-general"],
        "deadline_s": 5,
        "models": {
            name: model(
                fake,
                "openai",
                f"{name}-up",
                price_per_mtok_input=pin,
                price_per_mtok_output=pout,
                timeout_s=10,  # no retry under load: the tests count upstream calls
                max_retries=0,
                pii_approved=name == "cheap-general",
            )
            for name, (pin, pout) in PRICES.items()
        },
    }
    models_file: Path = folder / "models.yaml"
    models_file.write_text(yaml.safe_dump(config))
    return Settings(routes_dir=routes, index_dir=folder / "index", models_file=models_file,
                    build_on_start=True, cache_backend="off")  # fmt: skip


Make = Callable[[BudgetLedger], Any]


@pytest.fixture
async def make_gateway(settings: Settings, encoder: Encoder) -> AsyncIterator[Make]:
    """Gateways (replicas) over one index, each with the ledger it is given."""
    assert settings.models_file is not None
    models = load_models(settings.models_file)
    async with AsyncExitStack() as stack:

        async def make(ledger: BudgetLedger) -> Gateway:
            metrics = Metrics()
            router = RouterService.from_settings(
                settings, encoder, default_chain=models.default_chain, metrics=metrics
            )
            await router.start()
            stack.push_async_callback(router.aclose)
            stack.push_async_callback(ledger.aclose)
            client = await stack.enter_async_context(httpx.AsyncClient())
            dispatcher = Dispatcher(models, client, metrics=metrics)
            return Gateway(router, models, dispatcher, None, metrics=metrics, ledger=ledger)

        yield make


async def burst(gateways: list[Gateway], who: Principal, n: int) -> tuple[int, list[str]]:
    """``n`` requests at once, spread over the replicas: (answered, refusal messages)."""

    async def one(i: int) -> str | None:
        try:
            await gateways[i % len(gateways)].complete(
                ask(CHAT_Q, max_tokens=20), access=RequestAccess(who)
            )
        except BudgetExceededError as exc:
            return str(exc)
        return None

    results = await asyncio.gather(*(one(i) for i in range(n)))
    refused = [r for r in results if r is not None]
    return n - len(refused), refused


async def test_a_burst_of_64_never_settles_above_the_budget(
    make_gateway: Make, fake: FakeUpstream
) -> None:
    fake.reset()
    ledger = MemoryBudgetLedger()
    gateway = await make_gateway(ledger)
    answered, refused = await burst([gateway], alice(0.10), 64)
    spent = await ledger.spend("key", "key_alice", "1d")
    assert 0 < spent <= 0.10
    assert refused and refused[0].startswith("budget of key 'alice' (0.10 USD per 1d) is spent")
    assert fake.calls() == answered  # a refused request never reached an upstream
    assert (await ledger.usage(alice()))[0].reserved_usd == 0.0


async def test_two_replicas_sharing_redis_never_overspend(
    make_gateway: Make,
    fake: FakeUpstream,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    fake.reset()
    a = await make_gateway(RedisBudgetLedger(redis_server.url, namespace="t:two"))
    b = await make_gateway(RedisBudgetLedger(redis_server.url, namespace="t:two"))
    answered, refused = await burst([a, b], alice(0.10, "bob"), 64)
    spent = await a.runtime.spending.ledger.spend("key", "key_bob", "1d")
    assert 0 < spent <= 0.10
    assert refused and fake.calls() == answered


async def test_half_a_dollar_under_32_concurrent_clients(make_gateway: Make) -> None:
    """The issue's outside check, driven with a Principal: 32 clients send until refused;
    the spend ends between 0.35 and 0.50 USD and every client's last answer is a 429
    naming the budget."""
    ledger = MemoryBudgetLedger()
    gateway = await make_gateway(ledger)
    who = alice(0.50, "carol")
    last: list[str] = []

    async def client() -> None:
        for _ in range(200):
            try:
                await gateway.complete(ask(CHAT_Q, max_tokens=20), access=RequestAccess(who))
            except BudgetExceededError as exc:
                last.append(str(exc))
                return

    await asyncio.gather(*(client() for _ in range(32)))
    spent = await ledger.spend("key", "key_carol", "1d")
    assert 0.35 <= spent <= 0.50
    assert len(last) == 32 and all("key 'carol' (0.50 USD per 1d)" in m for m in last)


async def test_downgrade_at_80_percent(make_gateway: Make, fake: FakeUpstream) -> None:
    ledger = MemoryBudgetLedger()
    gateway = await make_gateway(ledger)
    who = alice(1.00, "dave")
    fake.reset()
    answer = await gateway.complete(ask(CODE_Q, max_tokens=20), access=RequestAccess(who))
    assert answer.response.model == "strong-coder"
    await ledger.settle(await ledger.reserve(who, 0.80), 0.80)  # 80 % used
    answer = await gateway.complete(ask(CODE_Q, max_tokens=20), access=RequestAccess(who))
    assert answer.response.model == "fast-small"  # the chain's cheapest
    assert fake.calls("strong-coder-up") == 1
    answer = await gateway.complete(ask(MATH_Q, max_tokens=20), access=RequestAccess(who))
    assert answer.response.model == "fast-small"  # the math route's budget_chain
    assert fake.calls("strong-reasoner-up") == 0


async def test_pii_gate_sends_personal_data_to_approved_models_only(
    make_gateway: Make, fake: FakeUpstream
) -> None:
    gateway = await make_gateway(MemoryBudgetLedger())
    fake.reset()
    mail = f"{CODE_Q}; send it to jane.doe@example.com"
    answer = await gateway.complete(
        ask(mail, max_tokens=20), access=RequestAccess(alice(5.0, "erin"))
    )
    assert answer.response.model == "cheap-general"
    assert fake.calls("strong-coder-up") == 0 and fake.calls("cheap-general-up") == 1
    with pytest.raises(PiiNotApprovedError, match=r"\(EMAIL\).*approved models: cheap-general"):
        await gateway.complete(ask(mail), model="fast-small")  # pinned, not approved
    assert fake.calls("fast-small-up") == 0
    answer = await gateway.complete(ask(CODE_Q, max_tokens=20))
    assert answer.response.model == "strong-coder"  # no personal data: the whole chain


async def test_the_decision_row_records_the_gate_the_budget_and_the_skips(
    make_gateway: Make,
) -> None:
    ledger = MemoryBudgetLedger()
    gateway = await make_gateway(ledger)
    who = alice(1.0, "gina")
    await ledger.settle(await ledger.reserve(who, 0.85), 0.85)
    ex = gateway.exchange(ask(f"{CODE_Q}, mail jane.doe@example.com", max_tokens=20),
                          access=RequestAccess(who), request_id="r-gate")  # fmt: skip
    await stages.prepare(ex)
    await spend.reserve(ex)
    row = gateway.recorder.request_record(ex).row()
    assert row["chain"] == ["cheap-general"]  # the one approved model; already the cheapest
    assert row["pii_gate"] == {
        "personal_data": ["EMAIL"],
        "skipped": ["strong-coder", "fast-small"],
    }
    assert row["budget"]["name"] == "key 'gina'" and row["budget"]["downgraded"] is False
    assert row["budget"]["share"] == pytest.approx(0.85)
    reasons = {s["model"]: s["reason"] for s in row["skipped"]}
    assert reasons["fast-small"].startswith("personal data in the request (EMAIL)")
    await spend.settle(ex)
    plain = gateway.exchange(ask(CODE_Q, max_tokens=20), access=RequestAccess(who))
    await stages.prepare(plain)
    await spend.reserve(plain)
    row = gateway.recorder.request_record(plain).row()
    assert row["chain"] == ["fast-small"] and row["budget"]["downgraded"] is True
    assert row["pii_gate"] == {"personal_data": []}
    reasons = {s["model"]: s["reason"] for s in row["skipped"]}
    assert reasons["strong-coder"] == (
        "key 'gina' is 85% used (downgrade at 80%): dearer than fast-small"
    )
    assert row["budget"]["reserved_usd"] > 0
    await spend.settle(plain)
    await spend.settle(ex)
    assert (await ledger.usage(who))[0].reserved_usd == 0.0


async def test_streams_settle_when_they_end_or_are_cut(
    make_gateway: Make, fake: FakeUpstream
) -> None:
    ledger = MemoryBudgetLedger()
    gateway = await make_gateway(ledger)
    who = alice(5.0, "frank")
    fake.reset()
    opened = await gateway.stream(ask(CHAT_Q, max_tokens=20), access=RequestAccess(who))
    events = [e async for e in opened.events]
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert await ledger.spend("key", "key_frank", "1d") == pytest.approx(done.response.cost_usd)
    fake.script("cheap-general-up", Fault.break_stream())
    opened = await gateway.stream(ask(CHAT_Q, max_tokens=20), access=RequestAccess(who))
    _ = [e async for e in opened.events]
    cut = await ledger.spend("key", "key_frank", "1d") - done.response.cost_usd
    assert cut > 0  # the input and the text sent before the cut are counted
    assert (await ledger.usage(who))[0].reserved_usd == 0.0
