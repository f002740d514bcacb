"""Load shedding and the body limit, against the real app on loopback and the fake upstream.

The router runs under uvicorn with two slots and one queue place; the upstream is made
slow so requests pile up. Ordering is driven by polling ``/readyz``, never by timing.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

LIMIT = 64 * 1024
BODY = {"model": "cheap-general", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    fake: FakeUpstream, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from tests.conftest import SMALL_ROUTES

    folder = tmp_path_factory.mktemp("admission")
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        (routes / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
    spec: dict[str, Any] = {"provider": "openai", "base_url": fake.openai_base, "model": "gpt-up"}
    models = {
        "default_chain": ["cheap-general"],
        "models": {
            name: {**spec, "model": f"{name}-up"}
            for name in ("cheap-general", "strong-coder", "strong-reasoner", "fast-small")
        },
    }
    models_file = folder / "models.yaml"
    models_file.write_text(yaml.safe_dump(models))
    settings = Settings(
        routes_dir=routes, index_dir=folder / "index", models_file=models_file,
        build_on_start=True, cache_backend="off", max_in_flight=2, max_queue=1,
        queue_timeout_s=5.0, max_body_bytes=LIMIT,
    )  # fmt: skip
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> None:
    fake.reset()


async def wait_for(client: httpx.AsyncClient, url: str, **expected: int) -> dict[str, Any]:
    for _ in range(500):
        ready: dict[str, Any] = (await client.get(f"{url}/readyz")).json()
        if all(ready[k] == v for k, v in expected.items()):
            return ready
        await asyncio.sleep(0.01)
    raise AssertionError(f"/readyz never showed {expected}: {ready}")


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    return error


async def test_beyond_the_slots_and_the_queue_requests_get_503_with_retry_after(
    server: str, fake: FakeUpstream
) -> None:
    fake.script("cheap-general-up", Fault.slow(3.0), Fault.slow(3.0))  # then answers at once
    url = f"{server}/v1/chat/completions"
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(f"{server}/readyz")).json()["status"] == "ready"

        def post(priority: str = "normal") -> asyncio.Task[httpx.Response]:
            headers = {"x-intent-router-priority": priority}
            return asyncio.create_task(client.post(url, json=BODY, headers=headers))

        running = [post(), post()]
        await wait_for(client, server, in_flight=2)
        queued_normal = post()
        ready = await wait_for(client, server, queued=1)
        assert ready == {"status": "saturated", "in_flight": 2, "max_in_flight": 2,
                         "queued": 1, "max_queue": 1}  # fmt: skip
        assert (await client.get(f"{server}/readyz")).status_code == 503
        assert (await client.get(f"{server}/healthz")).status_code == 200  # never shed

        low = await post("low")  # the queue is full of more urgent work: shed at once
        error = assert_openai_error(low, 503, "overloaded")
        assert low.headers["retry-after"].isdigit() and "capacity" in error["message"]
        high = post("high")  # takes the place of the queued normal request
        evicted = await queued_normal
        assert_openai_error(evicted, 503, "overloaded")
        assert "retry-after" in evicted.headers
        await wait_for(client, server, queued=1)
        metrics = (await client.get(f"{server}/metrics")).text
        assert 'intent_router_shed_total{reason="queue_full"} 2' in metrics
        assert all(r.status_code == 200 for r in await asyncio.gather(*running))
        answered = await high  # got the first slot freed
        assert answered.status_code == 200
        await wait_for(client, server, in_flight=0, queued=0)
    assert fake.calls("cheap-general-up") == 3  # the two held, then the high-priority one


async def test_a_bad_priority_is_refused(server: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server}/v1/chat/completions", json=BODY, headers={"x-intent-router-priority": "9"}
        )
    error = assert_openai_error(response, 400, "invalid_priority")
    assert error["param"] == "x-intent-router-priority"


async def test_a_large_body_is_refused_from_its_content_length(
    server: str, fake: FakeUpstream
) -> None:
    big = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * 12_000_000}]})
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{server}/v1/chat/completions", content=big,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert_openai_error(response, 413, "request_too_large")

        async def chunks() -> Any:
            for _ in range(12 * 16):  # 12 MiB, chunked (no Content-Length)
                yield b"x" * 65536

        response = await client.post(f"{server}/v1/chat/completions", content=chunks())
        assert_openai_error(response, 413, "request_too_large")
        metrics = (await client.get(f"{server}/metrics")).text
    assert "intent_router_body_too_large_total 2" in metrics
    assert fake.calls() == 0


def test_a_chunked_body_is_cut_as_soon_as_it_passes_the_limit(server: str) -> None:
    """Send a little more than the limit and then nothing: the 413 must not wait for the end."""
    host = urlparse(server)
    with socket.create_connection((host.hostname, host.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 16384
        for _ in range(LIMIT // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # The body is not finished (no last chunk): the answer comes anyway.
        answer = b""
        while chunk := sock.recv(65536):  # connection: close ends it
            answer += chunk
    text = answer.decode("latin-1")
    assert text.startswith("HTTP/1.1 413"), text[:200]
    body = json.loads(text.split("\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_too_large"


def test_small_bodies_pass(server: str, fake: FakeUpstream) -> None:
    response = httpx.post(f"{server}/v1/chat/completions", json=BODY, timeout=30)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "[cheap-general-up] hello there"


def test_config_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    models = tmp_path / "models.yaml"
    models.write_text(
        "default_chain: [a]\nmodels:\n"
        "  a: {provider: openai, base_url: 'http://127.0.0.1:9', model: m}\n"
        "  a: {provider: openai, base_url: 'http://127.0.0.1:9', model: n}\n"
    )
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, extra in ((good, ""), (bad, "chain: [a]\n")):
        folder.mkdir()
        (folder / "r.yaml").write_text(f"name: r\nutterances: [hello]\nchain: [a]\n{extra}")
    cases = [
        (good, ["--models", str(models)], {},
         f"{models}:4: duplicate key 'a' (first defined on line 3)"),
        (bad, ["--models", "none"], {}, f"{bad / 'r.yaml'}:4: duplicate key 'chain'"),
        (good, [], {"INTENT_ROUTER_MAX_BODY_BYTES": "lots"},
         "setting max_body_bytes (INTENT_ROUTER_MAX_BODY_BYTES / --max-body-bytes)"),
    ]  # fmt: skip
    for routes, flags, env, expected in cases:
        done = subprocess.run(
            [sys.executable, "-m", "intent_router.cli", "serve", "--routes", str(routes),
             "--index", str(tmp_path / "index"), *flags],
            capture_output=True, text=True, timeout=120,
            env={**__import__("os").environ, **env},
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        assert len(lines) == 1 and lines[0].startswith("intent-router: error: "), done.stderr
        assert expected in lines[0] and "Traceback" not in done.stderr


async def test_an_admitted_stream_holds_its_slot_until_it_ends(
    server: str, fake: FakeUpstream
) -> None:
    fake.chunk_delay_ms = 200
    try:
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream(
                "POST", f"{server}/v1/chat/completions", json={**BODY, "stream": True}
            ) as response,
        ):
            assert response.status_code == 200
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("data: ")
            assert (await client.get(f"{server}/readyz")).json()["in_flight"] == 1
            rest = [line async for line in lines]
            assert "data: [DONE]" in rest
            await wait_for(client, server, in_flight=0)
    finally:
        fake.chunk_delay_ms = 0


async def test_a_slot_handed_to_a_request_that_went_away_is_passed_on() -> None:
    from intent_router.api.admission import AdmissionControl

    control = AdmissionControl(max_in_flight=1, max_queue=2, queue_timeout_s=5)
    assert await control.acquire(1)
    gone = asyncio.create_task(control.acquire(1))
    waiting = asyncio.create_task(control.acquire(1))
    while control.queued < 2:
        await asyncio.sleep(0)
    control.release()  # handed to `gone` ...
    gone.cancel()  # ... which is cancelled before it runs: the slot goes to the next
    assert await waiting
    assert gone.cancelled() and control.in_flight == 1 and control.queued == 0
    control.release()
    assert control.in_flight == 0
