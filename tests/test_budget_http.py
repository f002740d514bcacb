"""The issue's outside check over HTTP with keys: a 0.50 USD budget under 32 concurrent
clients spends between 0.35 and 0.50 USD and then answers 429 naming the budget. One
router with ``--keys FILE`` (spend persisted beside it), and two replicas sharing keys
and budgets through a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.router_server import model

from intent_router.access.budget import BudgetLedger
from intent_router.access.budget_memory import MemoryBudgetLedger, spend_file_for
from intent_router.access.budget_redis import RedisBudgetLedger
from intent_router.access.file_store import FileKeyStore
from intent_router.access.keys import KeySpec, KeyStore
from intent_router.access.redis_store import RedisKeyStore
from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream
from intent_router.testing.cache_fixtures import redis_server  # noqa: F401 - a fixture
from intent_router.testing.redis_server import RedisServer
from intent_router.testing.server import serve_in_thread

CHAT_Q = "hi there, how are you today"
BODY = {"model": "cheap-general", "max_tokens": 20,
        "messages": [{"role": "user", "content": CHAT_Q}]}  # fmt: skip
# ~0.021 USD a request (7 + 7 tokens), a worst case of 0.05 (10 estimated + 20 max_tokens)
PRICED = {"price_per_mtok_input": 1000.0, "price_per_mtok_output": 2000.0}
# no timeouts under load: a timed-out attempt is paid upstream but has no usage to settle
SLOW_OK = {**PRICED, "timeout_s": 10, "max_retries": 0}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Path:
    folder = tmp_path_factory.mktemp("budget-http")
    routes = folder / "routes"
    routes.mkdir()
    route = {"name": "chitchat", "utterances": [CHAT_Q, "good morning"], "chain": ["cheap-general"]}
    (routes / "chitchat.yaml").write_text(yaml.safe_dump(route))
    config = {"default_chain": ["cheap-general"], "deadline_s": 5,
              "models": {"cheap-general": model(fake, "openai", "gpt-up", **SLOW_OK)}}  # fmt: skip
    (folder / "models.yaml").write_text(yaml.safe_dump(config))
    return folder


def settings(folder: Path, **keys: Any) -> Settings:
    return Settings(routes_dir=folder / "routes", index_dir=folder / "index",
                    models_file=folder / "models.yaml", build_on_start=True,
                    cache_backend="off", **keys)  # fmt: skip


def new_key(store: KeyStore, name: str) -> tuple[str, str]:
    async def run() -> tuple[str, str]:
        record, secret = await store.create(KeySpec(name=name, budget_usd=0.50, period="1d"))
        await store.aclose()
        return record.id, secret

    return asyncio.run(run())


def clients_until_refused(urls: list[str], secret: str, n: int = 32) -> list[httpx.Response]:
    """``n`` clients, each sending until it is refused; every client's last answer."""
    headers = {"authorization": f"Bearer {secret}"}

    async def client(c: httpx.AsyncClient, i: int) -> httpx.Response:
        for _ in range(100):
            reply = await c.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=BODY,
                                 headers=headers)  # fmt: skip
            if reply.status_code != 200:
                return reply
        raise AssertionError("never refused")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as c:
            return list(await asyncio.gather(*(client(c, i) for i in range(n))))

    return asyncio.run(run())


def spent(ledger: BudgetLedger, key_id: str) -> float:
    async def run() -> float:
        try:
            return await ledger.spend("key", key_id, "1d")
        finally:
            await ledger.aclose()

    return asyncio.run(run())


def check_refusals(last: list[httpx.Response]) -> None:
    for reply in last:
        assert reply.status_code == 429, reply.text
        error = reply.json()["error"]
        assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
        assert error["message"].startswith("budget of key 'dora' (0.50 USD per 1d) is spent: ")
        assert int(reply.headers["retry-after"]) >= 1


def test_half_a_dollar_under_32_clients_with_a_keys_file(
    folder: Path, fake: FakeUpstream, encoder: Encoder, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    key_id, secret = new_key(FileKeyStore(keys_file), "dora")
    fake.reset()
    with serve_in_thread(create_app(settings(folder, keys_file=keys_file), encoder=encoder)) as url:
        last = clients_until_refused([url], secret)
    check_refusals(last)
    total = spent(MemoryBudgetLedger(spend_file_for(keys_file)), key_id)  # written at shutdown
    assert 0.35 <= total <= 0.50
    assert total == pytest.approx(fake.calls() * 0.021, abs=1e-6)  # every answer was counted


def test_half_a_dollar_under_32_clients_over_two_replicas_sharing_redis(
    folder: Path,
    fake: FakeUpstream,
    encoder: Encoder,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    key_id, secret = new_key(RedisKeyStore(redis_server.url), "dora")
    fake.reset()
    with ExitStack() as stack:
        urls = [
            stack.enter_context(serve_in_thread(create_app(
                settings(folder, keys_redis_url=redis_server.url), encoder=encoder)))
            for _ in range(2)
        ]  # fmt: skip
        last = clients_until_refused(urls, secret)
    check_refusals(last)
    total = spent(RedisBudgetLedger(redis_server.url), key_id)
    assert 0.35 <= total <= 0.50
    assert total == pytest.approx(fake.calls() * 0.021, abs=1e-6)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server
