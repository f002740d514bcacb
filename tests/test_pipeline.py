"""The request pipeline (``intent_router.pipeline``): stage order, the null cache, skipped
models in the decision row, and a request finishing on the runtime it started with.

Real encoder, index, memory cache and dispatcher, the fake upstream on loopback; the
gateway is driven directly (no HTTP app in front)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from tests.conftest import SMALL_ROUTES
from tests.router_server import model

from intent_router.api.app import make_cache
from intent_router.cache import Directives
from intent_router.cache_off import NullCache
from intent_router.config import Settings
from intent_router.dispatch import Dispatcher
from intent_router.embedding.encoder import Encoder
from intent_router.gateway import Gateway
from intent_router.models import load_models
from intent_router.observability.metrics import Metrics
from intent_router.pipeline import Exchange, stages
from intent_router.pipeline.runtime import Runtime
from intent_router.providers import ChatRequest, Message
from intent_router.rollout.rollouts import Rollouts
from intent_router.routing.schema import Route
from intent_router.service import RouterService
from intent_router.testing import FakeUpstream

CODE_Q = "write a python function that reverses a linked list"
MATH_Q = "what is the derivative of x^3"
NAMES = ("parse", "admit", "exact_cache", "embed_and_route", "choose_variant", "permit",
         "semantic_cache")  # fmt: skip


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)])


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Settings:
    folder = tmp_path_factory.mktemp("pipeline")
    routes = folder / "routes"
    routes.mkdir()
    names: set[str] = {"cheap-general"}
    for name, fields in SMALL_ROUTES.items():
        (routes / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
        names.update(str(m) for m in fields["chain"])  # type: ignore[attr-defined]
    config = {
        "default_chain": ["cheap-general"],
        "models": {name: model(fake, "openai", f"{name}-up") for name in sorted(names)},
    }
    models_file: Path = folder / "models.yaml"
    models_file.write_text(yaml.safe_dump(config))
    return Settings(routes_dir=routes, index_dir=folder / "index", models_file=models_file,
                    build_on_start=True, cache_backend="memory")  # fmt: skip


@pytest.fixture
async def gateway(settings: Settings, encoder: Encoder) -> AsyncIterator[Gateway]:
    assert settings.models_file is not None
    models = load_models(settings.models_file)
    metrics = Metrics()
    router = RouterService.from_settings(
        settings, encoder, default_chain=models.default_chain, metrics=metrics
    )
    await router.start()
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(models, client, metrics=metrics)
        runtime = Runtime.build(router, models, dispatcher, make_cache(settings, encoder), metrics)
        yield Gateway(runtime, metrics=metrics)
    await router.aclose()


def lookups(gateway: Gateway) -> float:
    family = gateway.metrics.cache_lookups.collect()[0]
    return sum(s.value for s in family.samples if s.name.endswith("_total"))


async def test_the_null_cache_misses_stores_nothing_and_says_why(gateway: Gateway) -> None:
    gateway.runtime = dataclasses.replace(gateway.runtime, cache=NullCache())
    for _ in range(2):  # a repeat is answered upstream again; no lookup is counted
        answer = await gateway.complete(ask(CODE_Q))
        assert answer.cache.to_dict() == {"hit": None, "similarity": None, "age_s": None,
                                          "stored": False, "skipped": "cache off"}  # fmt: skip
        assert answer.response.attempts
    assert lookups(gateway) == 0

    off, request, vector = NullCache(), ask(CODE_Q), np.ones(4, dtype=np.float32)
    early = off.early_scope(request, None)
    ctx = off.context(request, route="code", chain=["strong-coder"], pinned=None,
                      directives=Directives(), early=early)  # fmt: skip
    assert await off.lookup_exact(early, CODE_Q, Directives()) is None
    assert await off.lookup(ctx, CODE_Q, vector) is None
    assert await off.stale(ctx, CODE_Q, vector) is None
    info = await off.store(ctx, CODE_Q, vector, answer.response, route="code", chain=["m"])
    assert (info.hit, info.stored, info.skipped) == (None, False, "cache off")


def traced(ran: list[str]) -> tuple[stages.Stage, ...]:
    """The PREPARE stages, each noting its name in ``ran`` when it runs."""

    def wrap(name: str, stage: stages.Stage) -> stages.Stage:
        async def run(ex: Exchange) -> None:
            ran.append(name)
            await stage(ex)

        return run

    return tuple(wrap(name, getattr(stages, name)) for name in NAMES)


async def test_prepare_runs_the_stages_in_order_and_stops_at_the_first_answer(
    gateway: Gateway,
) -> None:
    assert tuple(getattr(stages, name) for name in NAMES) == stages.PREPARE
    await gateway.complete(ask(CODE_Q))  # stored: its repeat is an exact hit
    ran: list[str] = []

    repeat = gateway.exchange(ask(CODE_Q))
    await stages.prepare(repeat, traced(ran))
    assert ran == ["parse", "admit", "exact_cache"]
    assert repeat.answered and repeat.cache.hit == "exact"

    ran.clear()
    fresh = gateway.exchange(ask(MATH_Q))
    await stages.prepare(fresh, traced(ran))
    assert ran == list(NAMES) and not fresh.answered
    assert fresh.plan.route == "math" and fresh.scope is not None


async def test_models_a_stage_skips_show_in_the_decision_row(gateway: Gateway) -> None:
    ex = gateway.exchange(ask(CODE_Q), request_id="r-skip")
    await stages.prepare(ex)
    assert "skipped" not in gateway.recorder.request_record(ex).row()
    ex.skipped.append(("strong-coder", "budget"))
    row = gateway.recorder.request_record(ex).row()
    assert row["skipped"] == [{"model": "strong-coder", "reason": "budget"}]
    assert (row["request_id"], row["route"]) == ("r-skip", "code")


async def test_a_request_finishes_on_the_runtime_it_started_with(gateway: Gateway) -> None:
    started = gateway.runtime
    stream = await gateway.stream(ask(CODE_Q))
    gateway.runtime = dataclasses.replace(started, cache=NullCache())  # a swap, mid-stream
    assert [event async for event in stream.events]
    during = await gateway.complete(ask(CODE_Q))
    assert during.cache.skipped == "cache off"  # a request started after the swap

    gateway.runtime = started
    again = await gateway.complete(ask(CODE_Q))
    assert again.cache.hit == "exact"  # the stream was stored in the cache it started with


async def test_a_runtime_swap_keeps_the_canary_rollbacks_of_unchanged_variants(
    gateway: Gateway,
) -> None:
    variants = [
        {"name": "stable", "chain": ["strong-coder"], "weight": 90},
        {"name": "next", "chain": ["cheap-general"], "weight": 10, "canary": True},
    ]
    code = Route.model_validate({"name": "code", "utterances": ["x"], "variants": variants})
    first = Rollouts([code], gateway.metrics.rollout)
    gateway.runtime = dataclasses.replace(gateway.runtime, rollouts=first)
    first.routes["code"].weights["next"] = 0.0  # as a rollback leaves it
    second = Rollouts([code], gateway.metrics.rollout)
    gateway.runtime = dataclasses.replace(gateway.runtime, rollouts=second)
    assert gateway.rollouts is second and second.routes["code"].weights["next"] == 0.0
    changed = code.model_copy(update={"variants": code.variants[:1]})
    third = Rollouts([changed], gateway.metrics.rollout)
    gateway.runtime = dataclasses.replace(gateway.runtime, rollouts=third)
    assert gateway.rollouts.routes["code"].weights == {"stable": 90}
