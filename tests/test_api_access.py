"""Access through the real app: 401/403 shapes, models a key may not use never reach the
upstream, x-ratelimit headers and 429, tenant-scoped cache, key ids in the decision log,
and two replicas sharing keys and limits through a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cache_fixtures import redis_server  # noqa: F401 - a fixture
from tests.conftest import SMALL_ROUTES
from tests.redis_server import RedisServer
from tests.test_api_cache import CODE_Q, make_settings

from intent_router.access.file_store import FileKeyStore
from intent_router.access.keys import KeySpec, KeyStore
from intent_router.access.redis_store import RedisKeyStore
from intent_router.api.app import create_app
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream
from intent_router.testing.server import serve_in_thread

TRANSLATE_Q = "translate this sentence into french"
ROUTES = {**SMALL_ROUTES, "translation": {**SMALL_ROUTES["translation"],
                                          "cache": {"shared": True}}}  # fmt: skip


def make_keys(store: KeyStore, *specs: KeySpec) -> dict[str, str]:
    async def run() -> dict[str, str]:
        out = {}
        for spec in specs:
            _, out[spec.name] = await store.create(spec)
        await store.aclose()
        return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def keyed(
    fake: FakeUpstream, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("access")
    keys_file = folder / "keys.json"
    secrets = make_keys(
        FileKeyStore(keys_file),
        KeySpec(name="alice", team="research"),
        KeySpec(name="carol", team="research"),
        KeySpec(name="bob", team="ops"),
        KeySpec(name="cheap", models=["cheap-general"]),
        KeySpec(name="coder", routes=["code"]),
        KeySpec(name="research-coder", team="research", routes=["code"]),
        KeySpec(name="limited", rpm=3, tpm=100_000),
        KeySpec(name="streamer", team="stream", rpm=100, tpm=100_000),
        KeySpec(name="gone"),
    )
    asyncio.run(FileKeyStore(keys_file).revoke("gone"))
    log = folder / "decisions.jsonl"
    settings = make_settings(folder, fake, ROUTES, keys_file=keys_file, decision_log=log)
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url, secrets, log


def chat(url: str, key: str | None, query: str, *, header: str = "bearer", **body: Any) -> Any:
    headers = {}
    if key is not None:
        headers = {"authorization": f"Bearer {key}"} if header == "bearer" else {"x-api-key": key}
    payload = {"messages": [{"role": "user", "content": query}], **body}
    return httpx.post(f"{url}/v1/chat/completions", json=payload, headers=headers, timeout=30)


def messages(url: str, key: str | None, query: str, model: str = "auto") -> httpx.Response:
    headers = {"x-api-key": key} if key is not None else {}
    payload = {"model": model, "max_tokens": 50,
               "messages": [{"role": "user", "content": query}]}  # fmt: skip
    return httpx.post(f"{url}/v1/messages", json=payload, headers=headers, timeout=30)


def test_missing_wrong_and_revoked_keys_are_401_in_each_ingress_shape(
    keyed: tuple[str, dict[str, str], Path], fake: FakeUpstream
) -> None:
    url, keys, _ = keyed
    fake.reset()
    for key in (None, "ir-wrong", keys["gone"]):
        answer = chat(url, key, CODE_Q)
        assert answer.status_code == 401, answer.text
        error = answer.json()["error"]
        assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        anthropic = messages(url, key, CODE_Q)
        assert anthropic.status_code == 401
        assert anthropic.json()["type"] == "error"
        assert anthropic.json()["error"]["type"] == "authentication_error"
    assert "revoked" in chat(url, keys["gone"], CODE_Q).json()["error"]["message"]
    assert "needs an API key" in chat(url, None, CODE_Q).json()["error"]["message"]
    for path in ("/routes", "/v1/models", "/metrics", "/console/api/traffic"):
        assert httpx.get(f"{url}{path}").status_code == 401, path
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert fake.calls() == 0
    assert chat(url, keys["alice"], CODE_Q, header="x-api-key").status_code == 200
    assert httpx.get(f"{url}/routes", headers={"x-api-key": keys["bob"]}).status_code == 200


def test_a_key_limited_to_one_model_never_reaches_another(
    keyed: tuple[str, dict[str, str], Path], fake: FakeUpstream
) -> None:
    url, keys, _ = keyed
    fake.reset()
    pinned = chat(url, keys["cheap"], CODE_Q, model="strong-coder")
    assert pinned.status_code == 403
    error = pinned.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error", "model_not_allowed", "model")  # fmt: skip
    assert "strong-coder" in error["message"] and "cheap-general" in error["message"]
    anthropic = messages(url, keys["cheap"], CODE_Q, model="strong-coder")
    assert anthropic.status_code == 403
    assert anthropic.json()["error"]["type"] == "permission_error"
    math = chat(url, keys["cheap"], "solve the equation 3x + 7 = 22")  # chain: strong-reasoner
    assert math.status_code == 403 and "strong-reasoner" in math.json()["error"]["message"]
    code = chat(url, keys["cheap"], "write a go program that reads a file line by line")
    assert code.status_code == 200  # the code chain without strong-coder: cheap-general
    assert code.headers["x-intent-router-model"] == "cheap-general"
    assert (fake.calls("claude-up"), fake.calls("gemini-up"), fake.calls("gpt-up")) == (0, 0, 1)


def test_a_key_limited_to_a_route_is_refused_elsewhere(
    keyed: tuple[str, dict[str, str], Path], fake: FakeUpstream
) -> None:
    url, keys, _ = keyed
    assert chat(url, keys["coder"], "implement a linked list in C").status_code == 200
    refused = chat(url, keys["coder"], "how do you say good morning in japanese")
    assert refused.status_code == 403
    assert "route 'translation'" in refused.json()["error"]["message"]
    # A teammate's cached answer (same tenant) is no way around the route limit.
    first = chat(url, keys["alice"], "how was your weekend")
    assert first.status_code == 200 and first.headers["x-intent-router-cache"] == "miss"
    again = chat(url, keys["research-coder"], "how was your weekend")
    assert again.status_code == 403 and "route 'chitchat'" in again.json()["error"]["message"]


def test_limits_are_reported_on_answers_and_the_fourth_request_of_rpm_3_is_429(
    keyed: tuple[str, dict[str, str], Path],
) -> None:
    url, keys, _ = keyed
    answers = [chat(url, keys["limited"], f"calculate {n} percent of 2400") for n in (1, 2, 3, 4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["x-ratelimit-limit-requests"] == "3" for a in answers)
    assert all(a.headers["x-ratelimit-limit-tokens"] == "100000" for a in answers)
    assert answers[0].headers["x-ratelimit-reset-requests"] in ("59s", "1m0s")
    refused = answers[3]
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "requests per minute" in error["message"]
    assert "x-ratelimit-limit-requests" not in chat(url, keys["alice"], CODE_Q).headers


def test_two_tenants_never_share_a_cached_answer_and_a_shared_route_does(
    keyed: tuple[str, dict[str, str], Path], fake: FakeUpstream
) -> None:
    url, keys, _ = keyed
    question = "refactor this java class to use interfaces"
    fake.reset()
    alice = chat(url, keys["alice"], question)
    assert alice.headers["x-intent-router-cache"] == "miss"
    carol = chat(url, keys["carol"], question)  # same team: one tenant
    assert carol.headers["x-intent-router-cache"] == "exact"
    bob = chat(url, keys["bob"], question)  # another team
    assert bob.status_code == 200 and bob.headers["x-intent-router-cache"] == "miss"
    cheap = chat(url, keys["cheap"], question)  # a key without a team is its own tenant
    assert cheap.headers["x-intent-router-cache"] == "miss"
    assert fake.calls("claude-up") == 2 and fake.calls("gpt-up") == 1
    first = chat(url, keys["alice"], TRANSLATE_Q)  # translation: cache.shared
    assert first.headers["x-intent-router-cache"] == "miss"
    other = chat(url, keys["bob"], TRANSLATE_Q)
    assert other.headers["x-intent-router-cache"] in ("exact", "semantic")
    assert other.json()["choices"][0]["message"] == first.json()["choices"][0]["message"]


def test_the_decision_log_names_the_key_and_team_never_the_secret(
    keyed: tuple[str, dict[str, str], Path],
) -> None:
    url, keys, log = keyed
    assert chat(url, keys["bob"], "tell me a bit about yourself").status_code == 200
    deadline = time.monotonic() + 5
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(r.get("team") == "ops" for r in rows):
        time.sleep(0.05)
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    bob = [r for r in rows if r.get("team") == "ops"]
    assert bob and bob[-1]["key_id"].startswith("key_")
    text = log.read_text()
    assert not any(secret in text for secret in keys.values())
    refused = [r for r in rows if r.get("error") == "PermissionDeniedError"]
    assert refused and refused[0]["key_id"] is not None


@pytest.mark.redis
def test_two_replicas_share_keys_and_limits_through_redis(
    fake: FakeUpstream,
    encoder: Encoder,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    keys = make_keys(RedisKeyStore(redis_server.url), KeySpec(name="twenty", rpm=20))
    settings = make_settings(tmp_path, fake, keys_redis_url=redis_server.url, cache_backend="off")
    with ExitStack() as stack:
        a = stack.enter_context(serve_in_thread(create_app(settings, encoder=encoder)))
        b = stack.enter_context(serve_in_thread(create_app(settings, encoder=encoder)))
        answers = [chat((a, b)[i % 2], keys["twenty"], "hey, what's up?") for i in range(21)]
        assert [r.status_code for r in answers] == [200] * 20 + [429]
        assert 30 <= int(answers[20].headers["retry-after"]) <= 60
        remaining = [int(r.headers["x-ratelimit-remaining-requests"]) for r in answers[:20]]
        assert remaining == list(range(19, -1, -1))  # one count across both replicas
        late = make_keys(RedisKeyStore(redis_server.url), KeySpec(name="late"))["late"]
        assert chat(b, late, "hey, what's up?").status_code == 200  # no restart needed
        asyncio.run(revoke(redis_server.url, "late"))
        assert chat(a, late, "hey, what's up?").status_code == 401
        assert chat(b, late, "hey, what's up?").status_code == 401


async def revoke(url: str, name: str) -> None:
    store = RedisKeyStore(url)
    await store.revoke(name)
    await store.aclose()


def test_admin_endpoints_list_and_create_keys_with_the_admin_key_only(
    keyed: tuple[str, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, keys, _ = keyed
    monkeypatch.setenv("INTENT_ROUTER_ADMIN_KEY", "admin-secret")
    admin = {"authorization": "Bearer admin-secret"}
    assert httpx.get(f"{url}/admin/keys", headers={"x-api-key": keys["alice"]}).status_code == 401
    listed = httpx.get(f"{url}/admin/keys", headers=admin)
    assert listed.status_code == 200
    rows = listed.json()["keys"]
    assert {"alice", "bob", "gone"} <= {r["name"] for r in rows}
    assert all("hash" not in r for r in rows) and not any(s in listed.text for s in keys.values())
    made = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "dave", "rpm": 5})
    assert made.status_code == 201 and made.json()["rpm"] == 5
    assert chat(url, made.json()["key"], "hi there, how are you today").status_code == 200
    again = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "dave"})
    assert again.status_code == 400 and "exists already" in again.json()["error"]["message"]
    bad = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "eve", "period": "2d"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "period"
    assert httpx.get(f"{url}/metrics", headers=admin).status_code == 200


def test_an_open_router_says_so_at_start_up_loudly_off_loopback(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from intent_router.api.access import open_warning
    from intent_router.config import Settings

    caplog.set_level(logging.WARNING, logger="intent_router.api.access")
    open_warning("127.0.0.1", Settings())
    open_warning("0.0.0.0", Settings())
    open_warning("0.0.0.0", Settings(keys_file=tmp_path / "keys.json"))  # keys on: silent
    (local, exposed) = caplog.records
    assert local.levelno == logging.WARNING and "no API keys" in local.getMessage()
    assert exposed.levelno == logging.ERROR and "NO AUTHENTICATION" in exposed.getMessage()
    assert "0.0.0.0" in exposed.getMessage() and "--keys" in exposed.getMessage()


def test_a_stream_carries_the_limit_headers_and_settles_its_tokens(
    keyed: tuple[str, dict[str, str], Path],
) -> None:
    url, keys, _ = keyed
    question = {"role": "user", "content": "thanks, that was really helpful"}
    body = {"model": "cheap-general", "stream": True, "max_tokens": 5000, "messages": [question]}
    headers = {"authorization": f"Bearer {keys['streamer']}"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as first:
        assert first.status_code == 200 and "data: [DONE]" in first.read().decode()
        assert first.headers["x-ratelimit-remaining-requests"] == "99"
        charged = 100_000 - int(first.headers["x-ratelimit-remaining-tokens"])
        assert charged > 5000  # the estimate: input + max_tokens
    second = chat(url, keys["streamer"], "nice to meet you", model="cheap-general", max_tokens=10)
    left = int(second.headers["x-ratelimit-remaining-tokens"])
    assert 100_000 - left < charged  # the stream was settled to its real, smaller usage
