"""The response cache through the real app: scope rules, Cache-Control, streams,
stale-if-error, and two replicas sharing one real Redis that dies and comes back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.cache_fixtures import redis_server  # noqa: F401 - a fixture
from tests.conftest import SMALL_ROUTES
from tests.redis_server import RedisServer
from tests.test_api_completions import write_models

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

CODE_Q = "write a python function that parses a date"
PARAPHRASE = "Write a Python function that parses a date."  # exact after normalising
SEMANTIC = "write a python function which parses a date"


def make_settings(
    folder: Path, fake: FakeUpstream, routes: dict[str, Any] | None = None, **extra: Any
) -> Settings:
    routes_dir = folder / "routes"
    routes_dir.mkdir(exist_ok=True)
    for name, fields in (routes or SMALL_ROUTES).items():
        (routes_dir / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
    return Settings(
        routes_dir=routes_dir,
        index_dir=folder / "index",
        models_file=write_models(fake, folder),
        build_on_start=True,
        **extra,
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def server(fake: FakeUpstream, encoder: Encoder, tmp_path: Path) -> Iterator[str]:
    fake.reset()
    with serve_in_thread(create_app(make_settings(tmp_path, fake), encoder=encoder)) as url:
        yield url


def ask(url: str, query: str, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/complete", json={"query": query, **body}, headers=headers, timeout=30)


def test_a_repeat_is_an_exact_hit_and_a_reworded_one_a_semantic_hit(
    server: str, fake: FakeUpstream
) -> None:
    first = ask(server, CODE_Q)
    assert first.headers["x-intent-router-cache"] == "miss" and first.json()["cache"]["stored"]
    again = ask(server, PARAPHRASE)
    assert again.headers["x-intent-router-cache"] == "exact"
    assert again.json()["text"] == first.json()["text"] and again.json()["cost_usd"] == 0
    similar = ask(server, SEMANTIC)
    assert similar.headers["x-intent-router-cache"] == "semantic"
    assert 0.9 <= similar.json()["cache"]["similarity"] < 1.0
    assert fake.calls("claude-up") == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"max_tokens": 12},
        {"model": "cheap-general"},
        {"stop": ["\n"]},
    ],
)
def test_answer_changing_parameters_never_share_an_entry(
    server: str, fake: FakeUpstream, change: dict[str, Any]
) -> None:
    assert ask(server, CODE_Q).headers["x-intent-router-cache"] == "miss"
    assert ask(server, CODE_Q, **change).headers["x-intent-router-cache"] == "miss"
    assert ask(server, CODE_Q, **change).headers["x-intent-router-cache"] == "exact"


def test_system_prompt_and_earlier_turns_are_part_of_the_key(server: str) -> None:
    def chat(messages: list[dict[str, str]]) -> str:
        response = httpx.post(f"{server}/complete", json={"messages": messages}, timeout=30)
        return str(response.headers["x-intent-router-cache"])

    user = {"role": "user", "content": CODE_Q}
    assert chat([user]) == "miss"
    assert chat([{"role": "system", "content": "answer in French"}, user]) == "miss"
    earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert chat([*earlier, user]) == "miss"
    assert chat([*earlier, user]) == "exact"


def test_near_misses_are_not_served(server: str, fake: FakeUpstream) -> None:
    ask(server, "convert 5 USD to EUR")
    response = ask(server, "convert 50 USD to EUR")
    assert response.headers["x-intent-router-cache"] == "miss"
    assert response.json()["text"].endswith("convert 50 USD to EUR")


def test_a_reworded_question_the_rules_would_refuse_is_served_and_a_near_miss_is_not(
    server: str, fake: FakeUpstream
) -> None:
    cached = "How can I read the first 10 lines of a text file in Python?"
    first = ask(server, cached)
    assert first.headers["x-intent-router-cache"] == "miss"
    reworded = ask(server, "How do I read the first 10 lines of a file using Python?")
    assert reworded.headers["x-intent-router-cache"] == "semantic"
    assert reworded.json()["text"] == first.json()["text"]
    near = ask(server, "How can I read the first 100 lines of a text file in Python?")
    assert near.headers["x-intent-router-cache"] == "miss"
    assert near.json()["text"].endswith("first 100 lines of a text file in Python?")


def test_cache_control_no_cache_and_no_store(server: str, fake: FakeUpstream) -> None:
    ask(server, CODE_Q)
    fresh = ask(server, CODE_Q, headers={"cache-control": "no-cache"})
    assert fresh.headers["x-intent-router-cache"] == "miss"  # not served from the cache
    assert fresh.json()["cache"]["skipped"] == "no-cache"  # nor stored
    assert fake.calls("claude-up") == 2
    served = ask(server, CODE_Q, headers={"cache-control": "no-store"})
    assert served.headers["x-intent-router-cache"] == "exact"  # no-store still looks up
    unstored = ask(server, "implement a linked list in C", headers={"cache-control": "no-store"})
    assert not unstored.json()["cache"]["stored"]
    assert ask(server, "implement a linked list in C").headers["x-intent-router-cache"] == "miss"


def test_hot_temperatures_and_errors_are_not_stored(server: str, fake: FakeUpstream) -> None:
    hot = ask(server, CODE_Q, temperature=1.8)
    assert hot.json()["cache"] == {**hot.json()["cache"], "stored": False, "skipped": "temperature"}
    fake.always("claude-up", Fault.http(500))
    fake.always("gpt-up", Fault.http(500))
    assert ask(server, "fix this javascript bug in my react component").status_code == 502
    fake.reset()
    later = ask(server, "fix this javascript bug in my react component")
    assert later.status_code == 200 and later.headers["x-intent-router-cache"] == "miss"


def test_a_streamed_request_is_answered_from_the_cache_as_a_stream(
    server: str, fake: FakeUpstream
) -> None:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": CODE_Q}]}

    def stream() -> tuple[str, str]:
        with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=30) as r:
            events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
            cache = r.headers["x-intent-router-cache"]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        return cache, text

    assert stream() == ("miss", f"[claude-up] {CODE_Q}")
    assert stream() == ("exact", f"[claude-up] {CODE_Q}")
    assert fake.calls("claude-up") == 1


def test_stale_if_error_serves_the_closest_answer_marked_stale(
    fake: FakeUpstream, encoder: Encoder, tmp_path: Path
) -> None:
    fake.reset()
    policy = {"stale_if_error": True, "ttl_s": 0.3}
    routes = {**SMALL_ROUTES, "code": {**SMALL_ROUTES["code"], "cache": policy}}
    settings = make_settings(tmp_path, fake, routes)
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        assert ask(url, CODE_Q).status_code == 200
        time.sleep(0.4)  # the entry is past its TTL: no longer served fresh
        assert ask(url, CODE_Q).headers["x-intent-router-cache"] == "miss"
        fake.always("claude-up", Fault.http(503))
        fake.always("gpt-up", Fault.http(503))
        time.sleep(0.4)
        stale = ask(url, SEMANTIC)
        assert stale.status_code == 200
        assert stale.json()["cache"]["hit"] == "stale"
        assert stale.headers["x-intent-router-cache"] == "stale"
        fake.always("gemini-up", Fault.http(503))
        other = ask(url, "compute the integral of 1 over x from 1 to e")  # math: not opted in
        assert other.status_code == 502


@pytest.mark.redis
def test_two_replicas_share_one_redis_and_survive_its_restart(
    fake: FakeUpstream,
    encoder: Encoder,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    fake.reset()
    settings = make_settings(tmp_path, fake, cache_backend="redis", redis_url=redis_server.url)
    with ExitStack() as stack:
        a = stack.enter_context(serve_in_thread(create_app(settings, encoder=encoder)))
        b = stack.enter_context(serve_in_thread(create_app(settings, encoder=encoder)))
        assert ask(a, CODE_Q).headers["x-intent-router-cache"] == "miss"
        assert _eventually(lambda: ask(b, SEMANTIC).headers["x-intent-router-cache"] == "semantic")
        assert fake.calls("claude-up") == 1

        redis_server.stop()  # Redis dies: both replicas keep answering, without the cache
        for url in (a, b):
            down = ask(url, "implement a linked list in C")
            assert down.status_code == 200 and down.headers["x-intent-router-cache"] == "miss"

        redis_server.start()  # and recover by themselves when it returns (empty)
        assert _eventually(
            lambda: ask(a, "write unit tests for this function").json()["cache"]["stored"]
        )
        assert _eventually(
            lambda: (
                ask(b, "write unit tests for this function").headers["x-intent-router-cache"]
                == "exact"
            )
        )


def _eventually(check: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_an_exact_repeat_is_answered_without_embedding_the_query(server: str) -> None:
    def embedded() -> float:
        text = httpx.get(f"{server}/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("intent_router_encoder_batch_items")
        )
        return float(line.split()[1])

    ask(server, CODE_Q)
    before = embedded()
    again = ask(server, PARAPHRASE)
    assert again.headers["x-intent-router-cache"] == "exact"
    assert again.json()["routing"]["route"] == "code"
    assert again.headers["x-intent-router-route"] == "code"
    assert embedded() == before
