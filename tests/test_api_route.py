"""POST /route, GET /routes and GET /healthz through the real app and the real encoder."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from intent_router.api.app import create_app
from intent_router.build import build_index
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.testing.server import serve_in_thread


def make_settings(routes_dir: Path, tmp_path: Path, **extra: object) -> Settings:
    return Settings(routes_dir=routes_dir, index_dir=tmp_path / "index", models_file=None, **extra)  # type: ignore[arg-type]


@pytest.fixture
def client(routes_dir: Path, tmp_path: Path, encoder: Encoder) -> Iterator[TestClient]:
    settings = make_settings(routes_dir, tmp_path, build_on_start=True)
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("query", "route"),
    [
        ("can you write me a go function that reverses a linked list", "code"),
        ("what's the integral of cos(x) dx", "math"),
        ("how would I say 'where is the train station' in german", "translation"),
        ("hey! how's your day going?", "chitchat"),
    ],
)
def test_route_picks_the_right_route(client: TestClient, query: str, route: str) -> None:
    response = client.post("/route", json={"query": query})
    assert response.status_code == 200
    body = response.json()
    assert body["route"] == route
    assert body["score"] >= body["threshold"]
    assert body["candidates"][0] == {"route": route, "score": body["score"]}
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4


def test_chain_comes_from_the_route_file(client: TestClient) -> None:
    body = client.post("/route", json={"query": "solve 2x + 3 = 11 for x"}).json()
    assert body["route"] == "math" and body["chain"] == ["strong-reasoner"]


def test_out_of_scope_query_gets_no_route(client: TestClient) -> None:
    body = client.post("/route", json={"query": "what is the weather forecast for Lyon"}).json()
    assert body["route"] is None
    assert body["score"] < body["threshold"]
    assert body["chain"] == []  # no models file: the default chain is empty
    # The decision record says why; this route set has no none route and no negatives.
    assert body["reason"] == "below_threshold"
    assert body["none_route"] is None and body["repelled"] == []


def test_yaml_threshold_overrides_the_default(
    write_routes,
    tmp_path: Path,
    encoder: Encoder,  # type: ignore[no-untyped-def]
) -> None:
    from tests.conftest import SMALL_ROUTES

    strict = {**SMALL_ROUTES, "math": {**SMALL_ROUTES["math"], "threshold": 0.999}}
    settings = make_settings(write_routes(strict), tmp_path, build_on_start=True)
    with TestClient(create_app(settings, encoder=encoder)) as client:
        body = client.post("/route", json={"query": "solve 2x + 3 = 11 for x"}).json()
        assert body["route"] is None and body["threshold"] == pytest.approx(0.999)
        listed = {r["name"]: r for r in client.get("/routes").json()["routes"]}
        assert listed["math"]["threshold"] == pytest.approx(0.999)


@pytest.mark.parametrize(
    ("payload", "words", "param"),
    [
        ({"query": ""}, "non-whitespace", "query"),
        ({"query": "   \n\t "}, "non-whitespace", "query"),
        ({}, "exactly one of 'query' or 'messages'", None),
        ({"query": 42}, "string", "query"),
        ({"query": "hi", "extra": 1}, "Extra inputs", "extra"),
    ],
)
def test_bad_requests_get_a_400_that_says_why(
    client: TestClient, payload: dict[str, object], words: str, param: str | None
) -> None:
    response = client.post("/route", json=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and words in error["message"]
    assert error["param"] == param


def test_over_long_query_is_truncated_not_an_error(client: TestClient) -> None:
    query = "my python code throws a KeyError, how do I fix it? " + (
        "def lookup(table, key):\n    return table[key]\n" * 3000
    )
    response = client.post("/route", json={"query": query})
    assert response.status_code == 200
    assert response.json()["truncated"] is True
    assert response.json()["route"] == "code"


def test_routes_and_health(client: TestClient) -> None:
    routes = client.get("/routes").json()
    assert [r["name"] for r in routes["routes"]] == ["chitchat", "code", "math", "translation"]
    assert routes["routes"][1]["chain"] == ["strong-coder", "cheap-general"]
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["routes"] == 4 and health["utterances"] == 40


def test_start_up_refuses_a_missing_index_without_build(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    settings = make_settings(routes_dir, tmp_path)
    with (
        pytest.raises(Exception, match="intent-router build"),
        TestClient(create_app(settings, encoder=encoder)),
    ):
        pass


async def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
    routes_dir: Path, tmp_path: Path, encoder: Encoder
) -> None:
    build_index(routes_dir, tmp_path / "index", encoder)
    queries = {
        "code": ["write a c++ class for a stack", "debug my python script", "sql query help"],
        "math": ["calculate 15 percent of 300", "integrate x^2 from 0 to 1", "derivative of e^x"],
        "translation": ["translate hello into korean", "say thank you in polish"],
        "chitchat": ["hello friend, how are you?", "thank you so much, bye"],
    }
    expected = {q: route for route, qs in queries.items() for q in qs}
    texts = list(expected) * 4  # 40 requests, 10 distinct queries
    app = create_app(make_settings(routes_dir, tmp_path), encoder=encoder)
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            results = await asyncio.gather(*(http.post("/route", json={"query": q}) for q in texts))
            sequential = [(await http.post("/route", json={"query": q})).json() for q in expected]
            metrics = (await http.get("/metrics")).text
    batches = _metric(metrics, "intent_router_encoder_batches_total")
    items = _metric(metrics, "intent_router_encoder_batch_items_total")
    assert items == len(texts) + len(expected)
    assert batches < len(texts)  # concurrent requests shared encoder calls
    assert _metric(metrics, "intent_router_encoder_batch_size_max") > 1
    got = [r.json() for r in results]
    assert [g["route"] for g in got] == [expected[q] for q in texts]
    by_query = {q: s for q, s in zip(expected, sequential, strict=True)}
    for query, body in zip(texts, got, strict=True):
        assert body["score"] == pytest.approx(by_query[query]["score"], abs=1e-4)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not found in:\n{text}")
