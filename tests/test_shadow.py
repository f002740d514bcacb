"""The shadow runner on its own: sampling, never waiting, bounded, failures as data."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from intent_router.errors import UpstreamError
from intent_router.observability.metrics import Metrics
from intent_router.providers.base import ChatRequest, ChatResponse, Message
from intent_router.rollout.policy import ShadowPolicy
from intent_router.rollout.shadow import ShadowRunner, encoder_similarity

REQUEST = ChatRequest(messages=[Message(role="user", content="write a sort")], stream=True)


def answer(model: str, text: str = "sorted(x)", cost: float = 0.002) -> ChatResponse:
    return ChatResponse(text=text, finish_reason="stop", input_tokens=5, output_tokens=3,
                        model=model, upstream_model=model, provider="openai", route="code",
                        cost_usd=cost, latency_ms=1.0, attempts=())  # fmt: skip


SERVED = answer("served-model", "def sort(x): return sorted(x)", 0.01)


async def same(a: str, b: str) -> float:
    return 0.75


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class Upstream:
    """A scripted shadow call: delay, failure, and what it was sent."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s, self.fail = delay_s, fail
        self.sent: list[tuple[ChatRequest, str, str]] = []
        self.release = asyncio.Event()

    async def __call__(self, request: ChatRequest, model: str, route: str) -> ChatResponse:
        self.sent.append((request, model, route))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise UpstreamError("HTTP 500 from shadow", model=model, status=500)
        return answer(model)


def runner(rows: list[dict[str, Any]], metrics: Metrics, seed: int = 1) -> ShadowRunner:
    return ShadowRunner(metrics.rollout, sink=rows.append, rng=random.Random(seed))


async def test_submit_returns_at_once_and_the_row_follows() -> None:
    rows: list[dict[str, Any]] = []
    metrics, upstream = Metrics(), Upstream(delay_s=0.3)
    shadows = runner(rows, metrics)
    policy = ShadowPolicy(models=["cand-a", "cand-b"], sample=1.0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    started = shadows.submit("code", policy, REQUEST, SERVED, "req_1", call=upstream,
                             similarity=same)  # fmt: skip
    assert started == 2 and loop.time() - t0 < 0.05 and rows == []
    await shadows.drain()
    assert sorted(r["model"] for r in rows) == ["cand-a", "cand-b"]
    row = rows[0]
    assert row["kind"] == "shadow" and row["request_id"] == "req_1" and row["route"] == "code"
    assert row["outcome"] == "ok" and row["similarity"] == 0.75 and row["cost_usd"] == 0.002
    assert row["served_model"] == "served-model" and row["latency_ms"] >= 250
    assert (row["input_tokens"], row["output_tokens"]) == (5, 3)
    assert all(not sent.stream for sent, _, _ in upstream.sent)  # mirrored as plain calls
    ok = {"route": "code", "model": "cand-a", "outcome": "ok"}
    assert sample(metrics, "intent_router_shadow_requests_total", **ok) == 1
    assert sample(metrics, "intent_router_shadow_similarity_count", route="code",
                  model="cand-a") == 1  # fmt: skip
    assert sample(metrics, "intent_router_shadow_tokens_total", model="cand-b",
                  kind="output") == 3  # fmt: skip


async def test_a_failing_shadow_is_recorded_and_raises_nothing() -> None:
    rows: list[dict[str, Any]] = []
    metrics = Metrics()
    shadows = runner(rows, metrics)
    policy = ShadowPolicy(models=["cand"], sample=1.0)
    shadows.submit("code", policy, REQUEST, SERVED, "req_2", call=Upstream(fail=True),
                   similarity=same)  # fmt: skip
    await shadows.drain()
    [row] = rows
    assert row["outcome"] == "error" and row["error"] == "UpstreamError"
    assert "HTTP 500" in row["reason"] and "similarity" not in row
    assert shadows.in_flight("code") == 0
    error = {"route": "code", "model": "cand", "outcome": "error"}
    assert sample(metrics, "intent_router_shadow_requests_total", **error) == 1


async def test_calls_over_the_cap_are_dropped_and_counted() -> None:
    rows: list[dict[str, Any]] = []
    metrics, upstream = Metrics(), Upstream(delay_s=0.2)
    shadows = runner(rows, metrics)
    policy = ShadowPolicy(models=["cand"], sample=1.0, max_in_flight=3)
    started = [
        shadows.submit("code", policy, REQUEST, SERVED, f"req_{i}", call=upstream, similarity=same)
        for i in range(10)
    ]
    assert started == [1, 1, 1] + [0] * 7 and shadows.in_flight("code") == 3
    dropped = {"route": "code", "model": "cand", "outcome": "dropped"}
    assert sample(metrics, "intent_router_shadow_requests_total", **dropped) == 7
    await shadows.drain()
    assert len(rows) == 3 and shadows.in_flight("code") == 0
    assert shadows.submit("code", policy, REQUEST, SERVED, "req_x", call=upstream,
                          similarity=same) == 1  # room again  # fmt: skip
    await shadows.aclose()


async def test_the_sample_rate_is_respected() -> None:
    rows: list[dict[str, Any]] = []
    shadows = runner(rows, Metrics(), seed=7)
    policy = ShadowPolicy(models=["cand"], sample=0.2, max_in_flight=10_000)
    upstream = Upstream()
    started = sum(
        shadows.submit("code", policy, REQUEST, SERVED, f"r{i}", call=upstream, similarity=same)
        for i in range(2000)
    )
    assert 330 < started < 470
    await shadows.drain()
    never = ShadowPolicy(models=["cand"], sample=0.0)
    assert shadows.submit("code", never, REQUEST, SERVED, "r", call=upstream, similarity=same) == 0


async def test_a_broken_similarity_keeps_the_row() -> None:
    rows: list[dict[str, Any]] = []
    shadows = runner(rows, Metrics())

    async def broken(a: str, b: str) -> float:
        raise RuntimeError("encoder gone")

    policy = ShadowPolicy(models=["cand"], sample=1.0)
    shadows.submit("code", policy, REQUEST, SERVED, "r", call=Upstream(), similarity=broken)
    await shadows.drain()
    assert rows[0]["outcome"] == "ok" and rows[0]["similarity"] is None


async def test_close_cancels_calls_in_flight() -> None:
    rows: list[dict[str, Any]] = []
    shadows = runner(rows, Metrics())
    policy = ShadowPolicy(models=["cand"], sample=1.0)
    shadows.submit("code", policy, REQUEST, SERVED, "r", call=Upstream(delay_s=30),
                   similarity=same)  # fmt: skip
    await asyncio.wait_for(shadows.aclose(), timeout=2)
    assert rows == [] and shadows.in_flight("code") == 0


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [("The capital of France is Paris.", "Paris is the capital of France.", True),
     ("The capital of France is Paris.", "def add(a, b): return a + b", False)],
)  # fmt: skip
async def test_similarity_by_the_encoder(encoder: Any, a: str, b: str, close: bool) -> None:
    cosine = await encoder_similarity(encoder)(a, b)
    assert (cosine > 0.8) is close and -1.0 <= cosine <= 1.0 + 1e-6


async def test_similarity_off_records_everything_else() -> None:
    rows: list[dict[str, Any]] = []
    shadows = runner(rows, Metrics())
    asked: list[str] = []

    async def counting(a: str, b: str) -> float:
        asked.append(b)
        return 0.5

    policy = ShadowPolicy(models=["cand"], sample=1.0, similarity=False)
    shadows.submit("code", policy, REQUEST, SERVED, "r", call=Upstream(), similarity=counting)
    await shadows.drain()
    assert asked == [] and rows[0]["similarity"] is None
    assert rows[0]["outcome"] == "ok" and rows[0]["cost_usd"] == 0.002
