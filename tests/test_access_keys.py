"""API keys: stored hashed (file and Redis), the `keys` CLI, authentication."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from tests.cache_fixtures import redis_server  # noqa: F401 - a fixture
from tests.redis_server import RedisServer

from intent_router.access.auth import Authenticator
from intent_router.access.budget_memory import MemoryBudgetLedger, spend_file_for
from intent_router.access.file_store import FileKeyStore
from intent_router.access.keys import KeySpec, KeyStore, KeyStoreError, hash_secret
from intent_router.access.redis_store import RedisKeyStore
from intent_router.cli import main
from intent_router.errors import AuthenticationError

KEY_SHAPE = re.compile(r"^ir-[A-Za-z0-9_-]{32,}$")


def create(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["keys", "create", *args]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    secret = create(capsys, "--keys", str(keys), "--name", "alice", "--team", "research",
                    "--budget-usd", "5", "--period", "7d", "--rpm", "20", "--tpm", "4000",
                    "--models", "cheap-general, fast-small", "--routes", "code",
                    "--priority", "high")  # fmt: skip
    assert KEY_SHAPE.match(secret)
    text = keys.read_text()
    assert secret not in text and secret[3:] not in text and secret[3:20] not in text
    assert hash_secret(secret) in text
    (record,) = json.loads(text)["keys"]
    assert record["team"] == "research" and record["budget_usd"] == 5.0
    assert record["period"] == "7d" and record["rpm"] == 20 and record["tpm"] == 4000
    assert record["models"] == ["cheap-general", "fast-small"] and record["routes"] == ["code"]
    assert record["priority"] == 2 and record["revoked"] is None
    assert keys.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_list_update_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--keys", str(tmp_path / "keys.json")]
    create(capsys, *where, "--name", "alice", "--rpm", "20")
    create(capsys, *where, "--name", "bob")
    assert main(["keys", "update", *where, "bob", "--models", "a,b"]) == 0
    assert main(["keys", "update", *where, "bob", "--tpm", "1000", "--rename", "robert",
                 "--models", "any"]) == 0  # fmt: skip
    assert main(["keys", "revoke", *where, "alice"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", *where]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["id", "name", "team", "budget_usd", "spend_usd"]
    assert len(table) == 2 and table[1].split()[1] == "robert" and "1000" in table[1].split()
    assert main(["keys", "list", *where, "--json", "--all"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"], r["tpm"], r["models"]) for r in rows] == [
        ("alice", "revoked", None, None), ("robert", "active", 1000, None)]  # fmt: skip
    assert all("hash" not in r for r in rows) and rows[0]["spend_usd"] == 0


def test_list_shows_the_spend_of_the_current_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    create(capsys, "--keys", str(keys), "--name", "alice", "--budget-usd", "2", "--period", "1d")
    (record,) = asyncio.run(FileKeyStore(keys).records())

    async def spend() -> None:  # what the server's ledger does for one answered request
        ledger = MemoryBudgetLedger(spend_file_for(keys))
        hold = await ledger.reserve(record.principal(), 0.5)
        await ledger.settle(hold, 0.25)
        ledger.save()

    asyncio.run(spend())
    assert main(["keys", "list", "--keys", str(keys), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["budget_usd"], row["spend_usd"]) == (2.0, 0.25)
    assert main(["keys", "list", "--keys", str(keys)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[3:5] == ["2", "0.25"]


def test_bad_input_is_refused_with_the_field_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--keys", str(tmp_path / "keys.json")]
    create(capsys, *where, "--name", "alice")
    assert main(["keys", "create", *where, "--name", "alice"]) == 2
    assert "named 'alice' exists already" in capsys.readouterr().err
    assert main(["keys", "create", *where, "--name", "carol", "--rpm", "0"]) == 2
    assert "rpm" in capsys.readouterr().err
    assert main(["keys", "revoke", *where, "nobody"]) == 2
    assert "no key with id or name 'nobody'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["keys", "create", *where, "--name", "dave", "--period", "2d"])


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys.json")

    def writer(n: int) -> None:
        for i in range(5):
            asyncio.run(store.create(KeySpec(name=f"w{n}-{i}")))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = {r.name for r in asyncio.run(store.records())}
    assert len(names) == 30


async def check_store(store: KeyStore) -> None:
    auth = Authenticator(store)
    record, secret = await store.create(KeySpec(name="alice", team="t", models=["a"], rpm=5))
    principal = await auth.authenticate(secret)
    assert (principal.key_id, principal.team, principal.models) == (record.id, "t", {"a"})
    assert principal.tenant == "team:t"
    for wrong in (None, "", secret + "x", "ir-" + "A" * 43):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(wrong)
    await store.update("alice", {"rpm": 50, "models": None})
    changed = await auth.authenticate(secret)
    assert changed.rpm == 50 and changed.models is None
    with pytest.raises(KeyStoreError, match="exists already"):
        await store.create(KeySpec(name="alice"))
    await store.revoke(record.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.authenticate(secret)
    again, _ = await store.create(KeySpec(name="alice"))  # the name is free again
    assert [r.name for r in await store.records()] == ["alice", "alice"]
    assert (await store.records())[1].id == again.id


async def test_file_store_sees_changes_made_by_another_writer(tmp_path: Path) -> None:
    await check_store(FileKeyStore(tmp_path / "keys.json"))
    server, cli = FileKeyStore(tmp_path / "k2.json"), FileKeyStore(tmp_path / "k2.json")
    _, secret = await cli.create(KeySpec(name="x"))
    assert await Authenticator(server).authenticate(secret)
    await cli.revoke("x")
    with pytest.raises(AuthenticationError):
        await Authenticator(server).authenticate(secret)


@pytest.mark.redis
async def test_redis_store_holds_hashes_only_and_is_shared(
    redis_server: RedisServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = RedisKeyStore(redis_server.url, namespace="t")
    other = RedisKeyStore(redis_server.url)  # the default namespace the CLI uses
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await redis_shared(store, other, client, redis_server.url, capsys)
    finally:
        await client.aclose()
        await store.aclose()
        await other.aclose()


async def redis_shared(
    store: KeyStore,
    other: KeyStore,
    client: aioredis.Redis,
    url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await check_store(store)
    secret = await asyncio.to_thread(create, capsys, "--redis", url, "--name", "cli")
    assert (await Authenticator(other).authenticate(secret)).name == "cli"
    dump = b""
    async for name in client.scan_iter("*"):
        kind = await client.type(name)
        value = await (client.hgetall(name) if kind == b"hash" else client.dump(name))
        dump += name + repr(value).encode()
    assert secret.encode() not in dump and secret[3:].encode() not in dump
    assert hash_secret(secret).encode() in dump


async def test_an_unreachable_redis_fails_closed() -> None:
    from tests.redis_server import free_port

    from intent_router.access.ratelimit import Bucket, RedisRateLimiter
    from intent_router.errors import AccessUnavailableError

    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    store, limiter = RedisKeyStore(url, op_timeout_s=0.2), RedisRateLimiter(url, op_timeout_s=0.2)
    try:
        with pytest.raises(AccessUnavailableError, match="key store"):
            await Authenticator(store).authenticate("ir-" + "A" * 43)
        with pytest.raises(AccessUnavailableError, match="rate-limit store"):
            await limiter.acquire([Bucket("k", 10, 1)])
    finally:
        await store.aclose()
        await limiter.aclose()
