"""A/B variants, shadow calls and a canary through a real router and the fake upstream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import SMALL_ROUTES

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

ADMIN = {"authorization": "Bearer test-admin"}
CODE_QUERY = "write a python function that parses a date"


def spec(fake: FakeUpstream, upstream: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "openai", "base_url": fake.base_url("openai"), "model": upstream,
        "timeout_s": 5, "max_retries": 0, "context_window": 8000,
        "price_per_mtok_input": 1.0, "price_per_mtok_output": 2.0, **extra,
    }  # fmt: skip


@contextmanager
def router(
    encoder: Encoder, folder: Path, fake: FakeUpstream, code: dict[str, Any]
) -> Iterator[str]:
    """The small routes with ``code`` replaced by ``code``'s keys; every other route and the
    default chain answer with ``good``."""
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        body = {"name": name, **fields, "chain": ["good"]}
        if name == "code":
            body = {k: v for k, v in body.items() if k != "chain"} | code
        (routes / f"{name}.yaml").write_text(yaml.safe_dump(body))
    models = {
        "default_chain": ["good"],
        "deadline_s": 10,
        "breaker": {"minimum_calls": 1000},
        "models": {
            name: spec(fake, f"{name}-up") for name in ("good", "alt", "bad", "slow", "flaky")
        },
    }
    (folder / "models.yaml").write_text(yaml.safe_dump(models))
    settings = Settings(
        routes_dir=routes,
        index_dir=folder / "index",
        models_file=folder / "models.yaml",
        build_on_start=True,
        cache_backend="off",
        decision_log=folder / "decisions.jsonl",
    )
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url


def ask(client: httpx.Client, url: str, user: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": CODE_QUERY}]}
    if user is not None:
        body["user"] = user
    return client.post(f"{url}/v1/chat/completions", json=body)


def answered_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text.split("]")[0].lstrip("[")  # the fake answers "[upstream id] …"


def metric(client: httpx.Client, url: str, name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in client.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_one_user_sees_one_variant_and_the_decision_row_says_which(
    encoder: Encoder, fake: FakeUpstream, tmp_path: Path
) -> None:
    variants = [
        {"name": "a", "chain": ["good"], "weight": 50},
        {"name": "b", "chain": ["alt"], "weight": 50},
    ]
    with router(encoder, tmp_path, fake, {"variants": variants}) as url, httpx.Client() as client:
        seen: dict[str, set[str]] = {}
        for _round in range(4):
            for i in range(12):
                seen.setdefault(f"user-{i}", set()).add(answered_by(ask(client, url, f"user-{i}")))
        assert all(len(models) == 1 for models in seen.values()), seen
        assert {m for models in seen.values() for m in models} == {"good-up", "alt-up"}
        answered = {"route": "code", "outcome": "ok"}
        total = metric(client, url, "intent_router_variant_requests_total", **answered)
        assert total == 48
    logged = [r for r in rows(tmp_path) if r.get("route") == "code"]
    assert len(logged) == 48
    by_variant = {r["variant"]: r["model"] for r in logged}
    assert by_variant == {"a": "good", "b": "alt"}


def test_a_slow_shadow_does_not_hold_the_answer_and_is_recorded_after(
    encoder: Encoder, fake: FakeUpstream, tmp_path: Path
) -> None:
    fake.reset()
    fake.always("slow-up", Fault.slow(2.0))
    code = {"chain": ["good"], "shadow": {"models": ["slow"], "sample": 1.0}}
    with router(encoder, tmp_path, fake, code) as url, httpx.Client() as client:
        response = ask(client, url, "u1")
        assert answered_by(response) == "good-up"
        # the answer is here; the shadow call reaches the upstream and is still running
        deadline = time.monotonic() + 5
        while fake.calls("slow-up") == 0:
            assert time.monotonic() < deadline, "the shadow call was never made"
            time.sleep(0.02)
        ok = {"route": "code", "model": "slow", "outcome": "ok"}
        assert metric(client, url, "intent_router_shadow_requests_total", **ok) == 0
        deadline = time.monotonic() + 10
        similarity = {"route": "code", "model": "slow"}
        while metric(client, url, "intent_router_shadow_similarity_count", **similarity) == 0:
            assert time.monotonic() < deadline, "the shadow call never finished"
            time.sleep(0.1)
        assert metric(client, url, "intent_router_shadow_requests_total", **ok) == 1
    fake.reset()
    [served] = [r for r in rows(tmp_path) if r.get("kind") is None and r["route"] == "code"]
    [shadow] = [r for r in rows(tmp_path) if r.get("kind") == "shadow"]
    assert shadow["request_id"] == served["request_id"]
    assert shadow["model"] == "slow" and shadow["served_model"] == "good"
    assert shadow["latency_ms"] >= 1900 and shadow["outcome"] == "ok"
    # same question, answers "[good-up] …" vs "[slow-up] …": close but not identical
    assert 0.5 < shadow["similarity"] < 1.0
    assert served["cost_usd"] > 0 and shadow["cost_usd"] > 0  # recorded apart


def test_shadow_failures_are_invisible_to_the_client(
    encoder: Encoder, fake: FakeUpstream, tmp_path: Path
) -> None:
    fake.reset()
    fake.always("bad-up", Fault.http(500))
    fake.always("flaky-up", Fault.drop())
    code = {"chain": ["good"], "shadow": {"models": ["bad", "flaky"], "sample": 1.0}}
    with router(encoder, tmp_path, fake, code) as url, httpx.Client() as client:
        for i in range(5):
            assert answered_by(ask(client, url, f"u{i}")) == "good-up"
        deadline = time.monotonic() + 10
        errors = {"route": "code", "outcome": "error"}
        while metric(client, url, "intent_router_shadow_requests_total", **errors) < 10:
            assert time.monotonic() < deadline, "shadow errors were not recorded"
            time.sleep(0.1)
    fake.reset()
    shadows = [r for r in rows(tmp_path) if r.get("kind") == "shadow"]
    assert len(shadows) == 10 and all(r["outcome"] == "error" for r in shadows)
    assert all(r["outcome"] == "ok" for r in rows(tmp_path) if r.get("kind") is None)


def test_a_failing_canary_is_rolled_back_and_no_client_sees_an_error(
    encoder: Encoder, fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTENT_ROUTER_ADMIN_KEY", "test-admin")
    fake.reset()
    fake.always("bad-up", Fault.http(500))
    code = {
        "variants": [
            {"name": "stable", "chain": ["good"], "weight": 70},
            {"name": "next", "chain": ["bad"], "weight": 30, "canary": True},
        ],
        "canary": {"min_requests": 5, "window_s": 60},
    }
    with router(encoder, tmp_path, fake, code) as url, httpx.Client() as client:
        assert client.get(f"{url}/admin/rollouts").status_code == 401
        weight = {"route": "code", "variant": "next"}
        assert metric(client, url, "intent_router_canary_weight", **weight) == 30
        sent = 0
        while metric(client, url, "intent_router_canary_weight", **weight) > 0:
            assert sent < 200, "the canary was never rolled back"
            # the canary's failures are covered by the baseline's model: every answer is 200
            assert answered_by(ask(client, url, f"user-{sent}")) == "good-up"
            sent += 1
        reached = fake.calls("bad-up")
        assert 5 <= reached < sent
        for i in range(30):  # afterwards nobody reaches the canary
            assert answered_by(ask(client, url, f"later-{i}")) == "good-up"
        assert fake.calls("bad-up") == reached
        assert metric(client, url, "intent_router_canary_rollbacks_total", **weight) == 1
        state = client.get(f"{url}/admin/rollouts", headers=ADMIN).json()["routes"]["code"]
    fake.reset()
    nxt = next(v for v in state["variants"] if v["name"] == "next")
    assert nxt["weight"] == 0 and nxt["configured_weight"] == 30
    assert nxt["chain"] == ["bad", "good"]  # the canary falls back to the baseline's models
    assert nxt["rolled_back"]["reason"] == "error_rate"
    assert nxt["rolled_back"]["canary"]["error_rate"] == 1.0


def test_a_streamed_answer_is_shadowed_as_a_plain_call(
    encoder: Encoder, fake: FakeUpstream, tmp_path: Path
) -> None:
    fake.reset()
    code = {"chain": ["good"], "shadow": {"models": ["alt"], "sample": 1.0}}
    body = {"model": "auto", "stream": True,
            "messages": [{"role": "user", "content": CODE_QUERY}]}  # fmt: skip
    with router(encoder, tmp_path, fake, code) as url, httpx.Client() as client:
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
        assert "[good-up]" in text and "[DONE]" in text
        deadline = time.monotonic() + 10
        while metric(client, url, "intent_router_shadow_requests_total", outcome="ok") == 0:
            assert time.monotonic() < deadline, "the stream was not shadowed"
            time.sleep(0.05)
    [sent] = fake.bodies("alt-up")
    assert sent.get("stream") in (None, False)
    assert sent["messages"][-1]["content"] == CODE_QUERY
    fake.reset()
