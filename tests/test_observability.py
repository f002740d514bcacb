"""Metrics and the decision log through the real app, after scripted traffic on the fake."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import SMALL_ROUTES
from tests.test_api_cache import CODE_Q, SEMANTIC, make_settings

from intent_router.api.app import create_app
from intent_router.embedding.encoder import Encoder
from intent_router.observability.decision_log import DecisionLog, RotatingFile
from intent_router.observability.metrics import Metrics
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

MODELS = {"strong-coder", "cheap-general", "strong-reasoner", "fast-small"}
TTL_S = 1.5
OUT_OF_SCOPE = "what is the capital city of australia"
FALLBACK_Q = "implement a linked list in C"
MATH_Q = "solve the equation 3x + 7 = 22"
EMAIL = "jane.doe@example.com"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def chat(url: str, rid: str, content: str, **body: Any) -> httpx.Response:
    payload = {"model": "auto", "messages": [{"role": "user", "content": content}], **body}
    return httpx.post(
        f"{url}/v1/chat/completions", json=payload, headers={"x-request-id": rid}, timeout=30
    )


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, ls, v in found if n == name and labels.items() <= ls.items())


def test_metrics_and_a_decision_row_for_each_kind_of_path(
    fake: FakeUpstream, encoder: Encoder, tmp_path: Path
) -> None:
    fake.reset()
    routes = {**SMALL_ROUTES, "code": {**SMALL_ROUTES["code"],
              "cache": {"stale_if_error": True, "ttl_s": TTL_S}}}  # fmt: skip
    log_path = tmp_path / "decisions.jsonl"
    settings = make_settings(tmp_path, fake, routes, decision_log=log_path)
    statuses: dict[str, int] = {}
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        stored_at = time.monotonic()
        statuses["r-routed"] = chat(url, "r-routed", CODE_Q).status_code
        statuses["r-exact"] = chat(url, "r-exact", CODE_Q).status_code
        statuses["r-semantic"] = chat(url, "r-semantic", SEMANTIC).status_code
        assert time.monotonic() - stored_at < TTL_S, "the machine is too slow for this test"
        statuses["r-none"] = chat(url, "r-none", OUT_OF_SCOPE).status_code
        statuses["r-pinned"] = chat(url, "r-pinned", MATH_Q, model="fast-small").status_code
        for i in range(2):
            streamed = chat(url, f"r-stream-{i}", f"{MATH_Q} number {i}", stream=True)
            statuses[f"r-stream-{i}"] = streamed.status_code
            assert "data: [DONE]" in streamed.text
        fake.script("claude-up", Fault.http(503))
        statuses["r-fallback"] = chat(url, "r-fallback", FALLBACK_Q).status_code
        time.sleep(TTL_S + 0.1)  # CODE_Q's entry is past its TTL: only served stale
        for upstream in ("claude-up", "gpt-up", "gemini-up"):
            fake.always(upstream, Fault.http(503))
        statuses["r-stale"] = chat(url, "r-stale", SEMANTIC).status_code
        statuses["r-exhausted"] = chat(url, "r-exhausted", MATH_Q).status_code
        statuses["r-unknown"] = chat(url, "r-unknown", MATH_Q, model="gpt-99").status_code
        assert httpx.post(f"{url}/route", json={"query": MATH_Q}).status_code == 200
        exposition = httpx.get(f"{url}/metrics").text
    assert statuses == {**{rid: 200 for rid in statuses}, "r-exhausted": 502, "r-unknown": 404}

    found = samples(exposition)
    duration = "intent_router_request_duration_seconds_count"
    assert value(found, duration) == len(statuses) + 1
    assert value(found, duration, endpoint="route", route="math", model="none") == 1
    assert value(found, duration, endpoint="chat.completions") == len(statuses)
    # routed, exact, semantic and stale (the cached answer was strong-coder's)
    assert value(found, duration, route="code", model="strong-coder") == 4
    assert value(found, duration, route="code", model="cheap-general") == 1  # fallback
    assert value(found, duration, route="none", model="fast-small") == 1
    assert value(found, duration, route="math", model="strong-reasoner") == 2  # streams
    chat_duration = {"endpoint": "chat.completions", "route": "math", "model": "none"}
    assert value(found, duration, **chat_duration) == 1  # exhausted
    assert value(found, duration, route="none", model="none") == 1  # unknown model
    assert value(found, "intent_router_time_to_first_token_seconds_count") == 2
    assert value(found, "intent_router_overhead_seconds_count") == len(statuses)
    assert value(found, "intent_router_embed_seconds_count") >= len(statuses) - 1
    assert value(found, "intent_router_tokens_total", model="strong-coder", kind="input") > 0
    assert value(found, "intent_router_tokens_total", model="strong-coder", kind="output") > 0
    assert value(found, "intent_router_cost_usd_total", model="strong-coder", route="code") > 0
    lookups = "intent_router_cache_lookups_total"
    assert value(found, lookups, tier="exact", result="hit") == 1
    assert value(found, lookups, tier="semantic", result="hit") == 1
    assert value(found, lookups, tier="semantic", result="stale") == 1
    fallbacks = "intent_router_fallbacks_total"
    assert value(found, fallbacks, from_model="strong-coder", to_model="cheap-general") == 1
    failed = "intent_router_upstream_duration_seconds_count"
    assert value(found, failed, model="strong-coder", outcome="failed") >= 2
    assert value(found, "intent_router_retries_total", reason="server_error") >= 1
    states = {ls["model"] for n, ls, _ in found if n == "intent_router_breaker_state"}
    assert states == MODELS

    # labels: only names from the config and fixed words, never ids or text
    allowed = MODELS | set(SMALL_ROUTES) | {
        "none", "other", "chat.completions", "messages", "complete", "route", "stream",
        "ok", "failed", "retried", "input", "output", "exact", "semantic", "hit", "miss",
        "stale", "server_error", "rate_limited", "timeout", "connection",
        "queue_full", "queue_timeout",
    }  # fmt: skip
    for name, labels, _ in found:
        for key, label in labels.items():
            assert key == "le" or label in allowed, (name, key, label)

    rows = {row["request_id"]: row for row in map(json.loads, log_path.read_text().splitlines())}
    assert set(rows) == set(statuses)
    routed = rows["r-routed"]
    assert (routed["route"], routed["model"], routed["cache"]) == ("code", "strong-coder", None)
    assert routed["score"] >= routed["threshold"] and routed["margin"] > 0
    assert routed["candidates"][0]["route"] == "code"
    assert [a["outcome"] for a in routed["attempts"]] == ["ok"]
    assert routed["input_tokens"] > 0 and routed["cost_usd"] > 0
    assert rows["r-exact"]["cache"] == "exact"
    assert rows["r-semantic"]["cache"] == "semantic"
    assert 0.9 <= rows["r-semantic"]["cache_similarity"] < 1.0
    assert (rows["r-none"]["route"], rows["r-none"]["model"]) == (None, "cheap-general")
    assert rows["r-none"]["candidates"]  # the near misses are kept
    pinned = rows["r-pinned"]
    assert (pinned["pinned_model"], pinned["model"], pinned["route"]) == ("fast-small",) * 2 + (
        None,
    )
    fallback = rows["r-fallback"]
    assert [(a["model"], a["outcome"], a["status"]) for a in fallback["attempts"]] == [
        ("strong-coder", "failed", 503),
        ("cheap-general", "ok", 200),
    ]
    assert fallback["model"] == "cheap-general"
    stale = rows["r-stale"]
    assert stale["cache"] == "stale" and stale["attempts"]
    assert {a["outcome"] for a in stale["attempts"]} <= {"failed", "retried", "skipped"}
    exhausted = rows["r-exhausted"]
    assert (exhausted["outcome"], exhausted["model"]) == ("error", None)
    assert exhausted["error"] == "ChainExhaustedError"
    unknown = rows["r-unknown"]
    assert (unknown["error"], unknown["model"], unknown["attempts"]) == (
        "UnknownModelError",
        None,
        [],
    )
    assert unknown["pinned_model"] == "gpt-99"
    retried = [a for a in exhausted["attempts"] if a["outcome"] == "retried"]
    assert retried and retried[0]["retry_reason"] == "server_error"
    text = log_path.read_text()
    assert all("prompt" not in row for row in rows.values())
    for prompt in (CODE_Q, SEMANTIC, OUT_OF_SCOPE, MATH_Q, FALLBACK_Q):
        assert prompt not in text


def test_redacted_prompts_in_the_decision_log_and_the_request_log(
    fake: FakeUpstream, encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reset()
    log_path = tmp_path / "decisions.jsonl"
    settings = make_settings(
        tmp_path, fake, decision_log=log_path, log_prompts="redacted", cache_backend="off"
    )
    prompt = f"write a python function that emails {EMAIL} the report"
    with (
        caplog.at_level(logging.INFO, logger="intent_router.requests"),
        serve_in_thread(create_app(settings, encoder=encoder)) as url,
    ):
        assert chat(url, "r-pii", prompt).status_code == 200
        unnamed = chat(url, "bad id with spaces", "hello friend, how are you?")
    (row, other) = map(json.loads, log_path.read_text().splitlines())
    assert row["request_id"] == "r-pii"
    assert row["prompt"] == "write a python function that emails <EMAIL> the report"
    assert other["request_id"] == unnamed.headers["x-request-id"] != "bad id with spaces"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("requests")]
    assert [line["request_id"] for line in lines] == ["r-pii", other["request_id"]]
    assert lines[0]["prompt"] == row["prompt"]
    assert EMAIL not in caplog.text and EMAIL not in log_path.read_text()


async def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    metrics = Metrics()
    decisions = DecisionLog(tmp_path / "d.jsonl", metrics, max_queue=2)
    for i in range(5):  # the writer is not running yet: the queue fills
        decisions.write({"request_id": f"r{i}"})
    assert decisions.dropped == 3
    assert metrics.registry.get_sample_value("intent_router_decision_log_dropped_total") == 3
    decisions.start()
    await asyncio.sleep(0)
    decisions.write({"request_id": "r5"})
    await decisions.aclose()
    ids = [json.loads(line)["request_id"] for line in (tmp_path / "d.jsonl").read_text().split()]
    assert ids == ["r0", "r1", "r5"]


def test_the_decision_log_rotates_by_size_and_keeps_n_files(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    writer = RotatingFile(path, max_bytes=100, keep=2)
    for i in range(10):
        writer.append([json.dumps({"i": i, "pad": "x" * 30}) + "\n"])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["d.jsonl", "d.jsonl.1", "d.jsonl.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    newest = [json.loads(line)["i"] for line in path.read_text().splitlines()]
    assert newest[-1] == 9
