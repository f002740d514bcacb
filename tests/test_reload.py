"""Hot reload, /admin/config and rollback through the real app on loopback, with the fake
upstream answering; SIGHUP through the real CLI server in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import SMALL_ROUTES
from tests.router_server import model

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.dispatch import Dispatcher
from intent_router.embedding.encoder import Encoder
from intent_router.models import ModelsConfig
from intent_router.resilience import BreakerState
from intent_router.testing import FakeUpstream
from intent_router.testing.server import free_port, serve_in_thread

ADMIN_KEY = "admin-secret"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
WEATHER = {
    "description": "Weather forecasts",
    "utterances": [
        "what's the weather forecast for tomorrow",
        "will it rain in paris this weekend",
        "how hot will it be in madrid today",
        "is it going to snow in denver tonight",
        "what is the temperature outside right now in berlin",
        "do I need an umbrella in london today",
    ],
    "chain": ["cheap-general"],
}
WEATHER_Q = "will it rain in rome tomorrow, do I need an umbrella"
QUERIES = [
    "write a python function that reverses a linked list",
    "solve the equation 5x - 3 = 12",
    "translate good night into spanish",
    "hey, how is your day going",
]


def write_config(folder: Path, fake: FakeUpstream) -> Settings:
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        (routes / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
    models = {
        name: model(fake, "openai", f"{name}-up")
        for name in ("strong-coder", "cheap-general", "strong-reasoner", "fast-small")
    }
    config = {"default_chain": ["cheap-general"], "deadline_s": 5, "models": models}
    (folder / "models.yaml").write_text(yaml.safe_dump(config))
    return Settings(
        routes_dir=routes,
        index_dir=folder / "index",
        models_file=folder / "models.yaml",
        build_on_start=True,
        cache_backend="off",
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTENT_ROUTER_ADMIN_KEY", ADMIN_KEY)


@pytest.fixture
def served(
    tmp_path: Path, fake: FakeUpstream, encoder: Encoder, admin_key: None
) -> Iterator[tuple[str, Settings]]:
    settings = write_config(tmp_path, fake)
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url, settings


def route_of(url: str, query: str) -> str | None:
    response = httpx.post(f"{url}/route", json={"query": query}, timeout=30)
    response.raise_for_status()
    route: str | None = response.json()["route"]
    return route


async def hammer(
    url: str, stop: asyncio.Event, clients: int = 8, done_at: list[float] | None = None
) -> Counter[str]:
    """``clients`` loops of /route and /v1/chat/completions until ``stop``; outcomes (and
    when each request ended, in ``done_at``)."""
    outcomes: Counter[str] = Counter()
    ends = done_at if done_at is not None else []

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            i = n
            while not stop.is_set():
                text = QUERIES[i % len(QUERIES)]
                if i % 2:
                    r = await http.post("/route", json={"query": text})
                else:
                    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
                    r = await http.post("/v1/chat/completions", json=body)
                outcomes["ok" if r.status_code == 200 else f"{r.status_code}: {r.text[:120]}"] += 1
                ends.append(time.monotonic())
                i += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    return outcomes


def test_reload_under_load_adds_a_route_with_no_failed_request(
    served: tuple[str, Settings],
) -> None:
    url, settings = served
    assert route_of(url, WEATHER_Q) != "weather"
    before = httpx.get(f"{url}/admin/config", headers=ADMIN).json()["version"]

    ends: list[float] = []

    async def scenario() -> tuple[Counter[str], dict[str, Any], float, float]:
        stop = asyncio.Event()
        load = asyncio.create_task(hammer(url, stop, done_at=ends))
        await asyncio.sleep(0.5)
        (settings.routes_dir / "weather.yaml").write_text(
            yaml.safe_dump({"name": "weather", **WEATHER})
        )
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            began = time.monotonic()
            result = (await http.post("/admin/reload", headers=ADMIN)).json()
            ended = time.monotonic()
        await asyncio.sleep(0.5)  # the load goes on after the swap
        stop.set()
        return await load, result, began, ended

    outcomes, result, began, ended = asyncio.run(scenario())
    assert set(outcomes) == {"ok"}, outcomes
    assert sum(began < t < ended for t in ends) >= 8  # requests were answered during the reload
    assert sum(t > ended for t in ends) >= 8  # and after the swap
    assert result["status"] == "reloaded"
    assert result["previous"]["fingerprint"] == before["fingerprint"]
    assert route_of(url, WEATHER_Q) == "weather"
    config = httpx.get(f"{url}/admin/config", headers=ADMIN).json()
    assert config["version"]["fingerprint"] == result["version"]["fingerprint"]
    assert "weather" in config["routes"]
    assert [v["event"] for v in config["versions"]] == ["start", "reload"]
    assert config["rollback_to"] == before["fingerprint"]


def test_a_broken_route_file_is_refused_and_the_old_routes_keep_answering(
    served: tuple[str, Settings],
) -> None:
    url, settings = served
    version = httpx.get(f"{url}/admin/config", headers=ADMIN).json()["version"]
    broken = settings.routes_dir / "weather.yaml"
    broken.write_text("name: weather\nutterances:\n  - will it rain\n  - [unclosed\n")
    response = httpx.post(f"{url}/admin/reload", headers=ADMIN, timeout=60)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["file"] == str(broken) and error["line"] == 5
    assert str(broken) in error["message"]
    assert route_of(url, QUERIES[0]) == "code"
    config = httpx.get(f"{url}/admin/config", headers=ADMIN).json()
    assert config["version"] == version  # still the running configuration
    assert config["last_error"]["file"] == str(broken)
    assert config["last_error"]["line"] == 5
    assert config["last_reload"]["status"] == "refused"
    # A chain naming an unknown model is refused too (chains are checked against models).
    broken.write_text(yaml.safe_dump({"name": "weather", **WEATHER, "chain": ["nope"]}))
    response = httpx.post(f"{url}/admin/reload", headers=ADMIN, timeout=60)
    assert (
        response.status_code == 422
        and "unknown model 'nope'" in response.json()["error"]["message"]
    )
    assert route_of(url, WEATHER_Q) != "weather"


def test_rollback_restores_the_previous_version(served: tuple[str, Settings]) -> None:
    url, settings = served
    first = httpx.get(f"{url}/admin/config", headers=ADMIN).json()["version"]
    assert httpx.post(f"{url}/admin/rollback", headers=ADMIN).status_code == 404  # none kept
    (settings.routes_dir / "weather.yaml").write_text(
        yaml.safe_dump({"name": "weather", **WEATHER})
    )
    assert (
        httpx.post(f"{url}/admin/reload", headers=ADMIN, timeout=60).json()["status"] == "reloaded"
    )
    assert route_of(url, WEATHER_Q) == "weather"
    again = httpx.post(f"{url}/admin/reload", headers=ADMIN, timeout=60).json()
    assert again["status"] == "unchanged"
    rolled = httpx.post(f"{url}/admin/rollback", headers=ADMIN).json()
    assert rolled["status"] == "rolled_back"
    assert rolled["version"]["fingerprint"] == first["fingerprint"]
    assert route_of(url, WEATHER_Q) != "weather"
    chat = {"model": "auto", "messages": [{"role": "user", "content": QUERIES[1]}]}
    answer = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=30)
    assert answer.status_code == 200 and answer.headers["x-intent-router-route"] == "math"
    config = httpx.get(f"{url}/admin/config", headers=ADMIN).json()
    assert config["version"]["fingerprint"] == first["fingerprint"]
    assert [v["event"] for v in config["versions"]] == ["start", "reload", "rollback"]


def test_admin_endpoints_need_the_admin_key(served: tuple[str, Settings]) -> None:
    url, _ = served
    for method, path in (("GET", "/admin/config"), ("POST", "/admin/reload"),
                         ("POST", "/admin/rollback")):  # fmt: skip
        assert httpx.request(method, f"{url}{path}").status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert httpx.request(method, f"{url}{path}", headers=wrong).status_code == 401
    assert httpx.get(f"{url}/admin/config", headers={"x-api-key": ADMIN_KEY}).status_code == 200


def test_unchanged_models_keep_their_breakers_across_a_reload() -> None:
    def config(coder_timeout: float) -> ModelsConfig:
        spec = {"provider": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}
        return ModelsConfig.model_validate(
            {
                "default_chain": ["general"],
                "breaker": {"minimum_calls": 2},
                "models": {"general": spec, "coder": {**spec, "timeout_s": coder_timeout}},
            }
        )

    async def run() -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            old = Dispatcher(config(30), client)
            for name in ("general", "coder"):
                for _ in range(2):
                    old.breakers.get(name).record_failure()
            assert set(old.breaker_states().values()) == {BreakerState.OPEN.value}
            new = Dispatcher(config(10), client)  # "coder" changed, "general" did not
            new.inherit(old)
            return new.breaker_states()

    assert asyncio.run(run()) == {"coder": "closed", "general": "open"}


def test_sighup_reloads_the_cli_server_under_load(
    tmp_path: Path, fake: FakeUpstream, admin_key: None
) -> None:
    settings = write_config(tmp_path, fake)
    port = free_port()
    cmd = [
        sys.executable, "-m", "intent_router.cli", "-q", "serve", "--build",
        "--routes", str(settings.routes_dir), "--index", str(settings.index_dir),
        "--models", str(settings.models_file), "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INTENT_ROUTER_CACHE_BACKEND": "off"}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)

        async def scenario() -> tuple[Counter[str], str | None]:
            stop = asyncio.Event()
            load = asyncio.create_task(hammer(url, stop))
            await asyncio.sleep(0.5)
            (settings.routes_dir / "weather.yaml").write_text(
                yaml.safe_dump({"name": "weather", **WEATHER})
            )
            os.kill(proc.pid, signal.SIGHUP)
            routed: str | None = None
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                for _ in range(240):  # the reload builds the new route's index: up to ~60 s
                    routed = (await http.post("/route", json={"query": WEATHER_Q})).json()["route"]
                    if routed == "weather":
                        break
                    await asyncio.sleep(0.25)
            await asyncio.sleep(0.3)
            stop.set()
            return await load, routed

        outcomes, routed = asyncio.run(scenario())
        assert routed == "weather", log.read_text()[-2000:]
        assert set(outcomes) == {"ok"}, outcomes
        assert proc.poll() is None  # SIGHUP reloads, it does not end the server
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_concurrent_reloads_are_serialised(served: tuple[str, Settings]) -> None:
    url, settings = served
    (settings.routes_dir / "weather.yaml").write_text(
        yaml.safe_dump({"name": "weather", **WEATHER})
    )

    async def both() -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=120, headers=ADMIN) as http:
            answers = await asyncio.gather(*(http.post("/admin/reload") for _ in range(2)))
        return sorted(a.json()["status"] for a in answers)

    assert asyncio.run(both()) == ["reloaded", "unchanged"]
    config = httpx.get(f"{url}/admin/config", headers=ADMIN).json()
    assert [v["event"] for v in config["versions"]] == ["start", "reload"]


def test_the_last_five_versions_are_listed_and_four_can_be_rolled_back_to(
    served: tuple[str, Settings],
) -> None:
    url, settings = served
    weather = settings.routes_dir / "weather.yaml"
    fingerprints = [httpx.get(f"{url}/admin/config", headers=ADMIN).json()["version"]]
    for i in range(5):  # the weather route comes and goes: a new version every time
        if i % 2 == 0:
            weather.write_text(yaml.safe_dump({"name": "weather", **WEATHER}))
        else:
            weather.unlink()
        result = httpx.post(f"{url}/admin/reload", headers=ADMIN, timeout=60).json()
        assert result["status"] == "reloaded"
        fingerprints.append(result["version"])
    config = httpx.get(f"{url}/admin/config", headers=ADMIN).json()
    assert [v["fingerprint"] for v in config["versions"]] == [
        v["fingerprint"] for v in fingerprints[1:]
    ]
    for back in reversed(fingerprints[2:5]):  # in memory: no rebuild, in the reverse order
        rolled = httpx.post(f"{url}/admin/rollback", headers=ADMIN).json()
        assert rolled["version"]["fingerprint"] == back["fingerprint"]
    assert route_of(url, WEATHER_Q) != "weather"  # the second reload removed it
    rolled = httpx.post(f"{url}/admin/rollback", headers=ADMIN).json()
    assert rolled["version"]["fingerprint"] == fingerprints[1]["fingerprint"]
    assert route_of(url, WEATHER_Q) == "weather"  # the first reload added it
    assert httpx.post(f"{url}/admin/rollback", headers=ADMIN).status_code == 404  # 4 kept
