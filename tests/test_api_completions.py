"""Completions end to end: the official openai SDK → our server → the fake upstream.

Both servers are real uvicorn servers on loopback; nothing of ours is mocked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

CODE_Q = "write a python function that parses a date"
CHITCHAT_Q = "hi there, how are you today"


def write_models(fake: FakeUpstream, folder: Path) -> Path:
    def model(provider: str, upstream: str) -> dict[str, Any]:
        return {
            "provider": provider, "base_url": fake.base_url(provider), "model": upstream,
            "timeout_s": 0.5, "max_retries": 1, "price_per_mtok_input": 1.0,
            "price_per_mtok_output": 2.0, "context_window": 8000,
        }  # fmt: skip

    data = {
        "default_chain": ["cheap-general"],
        "deadline_s": 5,
        "breaker": {"failure_threshold": 50, "cooldown_s": 30},
        "models": {
            "strong-coder": model("anthropic", "claude-up"),
            "cheap-general": model("openai", "gpt-up"),
            "strong-reasoner": model("gemini", "gemini-up"),
            "fast-small": model("openai", "small-up"),
        },
    }
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    fake: FakeUpstream, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from tests.conftest import SMALL_ROUTES

    folder = tmp_path_factory.mktemp("completions")
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        (routes / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
    settings = Settings(
        routes_dir=routes,
        index_dir=folder / "index",
        models_file=write_models(fake, folder),
        build_on_start=True,
        cache_backend="off",  # these tests count upstream calls; tests/test_api_cache.py
    )
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
def sdk(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def test_auto_routes_and_answers_through_the_route_chain(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": CODE_Q}]
    )
    completion = raw.parse()
    assert raw.headers["x-intent-router-route"] == "code"
    assert raw.headers["x-intent-router-model"] == "strong-coder"
    assert completion.choices[0].message.content == f"[claude-up] {CODE_Q}"
    assert completion.model == "strong-coder"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert fake.calls("claude-up") == 1 and fake.calls("gpt-up") == 0


def test_auto_streams_openai_chunks_from_another_wire_format(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    stream = sdk.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "solve the equation 3x + 7 = 22"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[gemini-up] solve the equation 3x + 7 = 22"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert fake.calls("gemini-up") == 1


def test_a_pinned_model_bypasses_routing(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="fast-small", messages=[{"role": "user", "content": CODE_Q}]
    )
    assert raw.headers["x-intent-router-route"] == "none"
    assert raw.parse().choices[0].message.content == f"[small-up] {CODE_Q}"
    assert fake.calls("claude-up") == 0


def test_an_unknown_model_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="unknown model 'gpt-99'"):
        sdk.chat.completions.create(model="gpt-99", messages=[{"role": "user", "content": "x"}])


def test_primary_failure_fails_over_and_the_response_lists_attempts(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.always("claude-up", Fault.http(401))
    completion = sdk.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": CODE_Q}]
    )
    assert completion.choices[0].message.content == f"[gpt-up] {CODE_Q}"
    attempts = completion.model_extra["x_router"]["attempts"]  # type: ignore[index]
    assert [(a["model"], a["status"]) for a in attempts] == [
        ("strong-coder", 401),
        ("cheap-general", 200),
    ]
    assert fake.calls("claude-up") == 1  # a 401 is not retried


def test_all_models_failing_is_a_502_listing_the_attempts(
    server: str, fake: FakeUpstream
) -> None:
    fake.always("claude-up", Fault.http(500))
    fake.always("gpt-up", Fault.malformed())
    response = httpx.post(
        f"{server}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": CODE_Q}]},
        timeout=30,
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "ChainExhaustedError"
    assert [a["model"] for a in error["attempts"]] == ["strong-coder"] * 2 + ["cheap-general"]


def test_a_stream_that_breaks_after_the_first_chunk_ends_with_a_visible_error(
    server: str, fake: FakeUpstream
) -> None:
    fake.always("claude-up", Fault.break_stream())
    with httpx.stream(
        "POST",
        f"{server}/v1/chat/completions",
        json={"model": "auto", "stream": True, "messages": [{"role": "user", "content": CODE_Q}]},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    assert "error" in json.loads(events[-1])
    assert fake.calls("gpt-up") == 0  # no failover once the client has received text


def test_complete_takes_a_query_or_messages(server: str, fake: FakeUpstream) -> None:
    by_query = httpx.post(f"{server}/complete", json={"query": CHITCHAT_Q}, timeout=30).json()
    assert by_query["routing"]["route"] == "chitchat"
    assert by_query["model"] == "fast-small" and by_query["text"] == f"[small-up] {CHITCHAT_Q}"
    assert by_query["cost_usd"] > 0 and by_query["attempts"][0]["outcome"] == "ok"
    conversation = {
        "messages": [
            {"role": "system", "content": "answer briefly"},
            {"role": "user", "content": CODE_Q},
        ],
        "max_tokens": 50,
    }
    by_messages = httpx.post(f"{server}/complete", json=conversation, timeout=30).json()
    assert by_messages["route"] == "code" and by_messages["model"] == "strong-coder"
    both = httpx.post(
        f"{server}/complete", json={"query": "x", "messages": conversation["messages"]}
    )
    assert both.status_code == 422 and "exactly one" in both.text


def test_models_endpoint_lists_auto_and_every_model(sdk: openai.OpenAI) -> None:
    ids = [m.id for m in sdk.models.list()]
    assert ids == ["auto", "cheap-general", "fast-small", "strong-coder", "strong-reasoner"]


def test_every_request_writes_one_json_log_line_without_the_prompt(
    sdk: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="intent_router.requests"):
        sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": CODE_Q}])
    lines = [r.getMessage() for r in caplog.records if r.name == "intent_router.requests"]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["route"] == "code" and entry["model"] == "strong-coder"
    assert entry["attempts"][0]["outcome"] == "ok" and entry["cost_usd"] > 0
    assert CODE_Q not in lines[0]
