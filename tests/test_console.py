"""The operator console: its JSON feeds through the real app, and the page in a real
headless Chromium (Debian's ``chromium`` driven by Playwright) against the app on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tests import test_api_cache
from tests.conftest import SMALL_ROUTES

from intent_router.testing import FakeUpstream, Fault

CHROMIUM = Path("/usr/bin/chromium")
MATH_Q = "what is the integral of x squared from 0 to 3"


# The cache tests' fixtures: one fake upstream per module, a fresh app (cache on) per test.
fake = test_api_cache.fake
server = test_api_cache.server


def explain(url: str, query: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/console/api/explain", json={"query": query}, timeout=30)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def traffic(url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{url}/console/api/traffic", timeout=30).json()
    return data


def test_explain_scores_every_route_and_finds_the_nearest_utterances(server: str) -> None:
    data = explain(server, MATH_Q)
    assert data["route"] == "math" and data["chain"] == ["strong-reasoner"]
    assert {s["route"] for s in data["scores"]} == set(SMALL_ROUTES)
    assert [s["matched"] for s in data["scores"]] == [True, False, False, False]
    assert data["scores"][0]["score"] == data["score"] >= data["threshold"]
    assert len(data["nearest"]) == 8
    assert data["nearest"][0]["route"] == "math"
    assert data["nearest"][0]["text"] in SMALL_ROUTES["math"]["utterances"]  # type: ignore[operator]
    cosines = [n["cosine"] for n in data["nearest"]]
    assert cosines == sorted(cosines, reverse=True)
    out = explain(server, "what is the weather on mars tomorrow")
    assert out["route"] is None and out["chain"] == ["cheap-general"]  # the default chain


def test_explain_previews_the_cache_without_serving_or_counting(server: str) -> None:
    before = explain(server, MATH_Q)["cache"]
    assert before["action"] == "miss" and before["nearest"] is None
    httpx.post(f"{server}/complete", json={"query": MATH_Q}, timeout=30)
    after = explain(server, MATH_Q)["cache"]
    assert after["action"] == "exact" and after["nearest"]["similarity"] > 0.99
    near = explain(server, "what is the integral of x squared from 0 to 4")["cache"]
    assert near["action"] == "miss" and near["nearest"]["verified"] is False
    assert "verifier" in near["reason"] or "threshold" in near["reason"]
    t = traffic(server)  # the explanations were neither requests nor cache lookups
    assert t["totals"]["requests"] == 1 and t["cache"] == {"miss": 1}
    code, reworded = test_api_cache.CODE_Q, test_api_cache.SEMANTIC
    httpx.post(f"{server}/complete", json={"query": code}, timeout=30)
    preview = explain(server, reworded)["cache"]
    assert preview["action"] == "semantic" and preview["nearest"]["text"] == code
    served = httpx.post(f"{server}/complete", json={"query": reworded}, timeout=30)
    assert served.headers["x-intent-router-cache"] == "semantic"  # the preview was right


def test_explain_refuses_bad_input(server: str) -> None:
    for body in ({}, {"query": ""}, {"query": "x", "extra": 1}):
        assert httpx.post(f"{server}/console/api/explain", json=body).status_code == 400


def test_traffic_counts_routes_models_cache_fallbacks_and_breakers(
    server: str, fake: FakeUpstream
) -> None:
    ask = lambda q: httpx.post(f"{server}/complete", json={"query": q}, timeout=30)  # noqa: E731
    assert ask(MATH_Q).status_code == 200
    assert ask(MATH_Q).headers["x-intent-router-cache"] == "exact"
    fake.always("claude-up", Fault.http(500))
    fell = ask("fix this javascript bug in my react component please")
    assert fell.json()["model"] == "cheap-general"
    t = traffic(server)
    assert t["totals"]["requests"] == 3 and t["totals"]["fallbacks"] == 1
    assert t["buckets"][-1]["by_route"] == {"math": 2, "code": 1}
    assert t["cache"] == {"miss": 2, "exact": 1} and t["totals"]["cache_hit_rate"] == 0.3333
    assert set(t["latency"]) == {"strong-reasoner", "cheap-general"}
    assert t["latency"]["strong-reasoner"]["count"] == 1
    assert set(t["breakers"]) == {"strong-coder", "cheap-general", "strong-reasoner", "fast-small"}
    assert t["totals"]["cost_usd"] > 0 and len(t["buckets"]) == 60


def test_the_page_and_its_files_come_from_the_package(server: str) -> None:
    page = httpx.get(f"{server}/console")
    assert page.status_code == 200 and 'id="query"' in page.text
    assert 'data-testid="traffic"' in page.text and 'data-testid="decision"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http://www.w3.org", "")  # nothing from elsewhere
    js = httpx.get(f"{server}/console/static/console.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "http://" not in js.text.replace("http://www.w3.org/2000/svg", "")
    assert httpx.get(f"{server}/console/static/..%2Fconsole.py").status_code == 404


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent: scripts/setup.sh installs Debian's chromium as root",
)
def test_console_in_chromium(server: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    foreign: list[str] = []
    app_host = urlsplit(server).netloc
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    errors.append(f"console {msg.type}: {msg.text}")
                    if msg.type in ("error", "warning")
                    else None
                ),
            )
            page.on(
                "request",
                lambda req: (
                    None
                    if urlsplit(req.url).netloc == app_host or req.url.startswith("data:")
                    else foreign.append(req.url)
                ),
            )
            page.goto(f"{server}/console")
            page.fill("#query", MATH_Q)
            page.press("#query", "Enter")
            decision = page.get_by_test_id("decision")
            sync_api.expect(decision).to_contain_text("math", timeout=10_000)
            assert decision.get_attribute("data-route") == "math"
            assert page.locator("#scores rect").count() >= 2 * len(SMALL_ROUTES)
            assert page.locator("#nearest text").count() > 0

            live = page.get_by_test_id("traffic")
            sync_api.expect(live.locator("svg").first).to_be_visible()
            sync_api.expect(page.locator("#by-route")).to_have_attribute("data-requests", "0")
            for query in (MATH_Q, "translate this sentence into french", "hi there, how are you"):
                httpx.post(f"{server}/complete", json={"query": query}, timeout=30)
            by_route = page.locator("#by-route")
            sync_api.expect(by_route).to_have_attribute("data-requests", "3", timeout=10_000)
            routes = {by_route.locator("rect[data-route]").nth(i).get_attribute("data-route")
                      for i in range(by_route.locator("rect[data-route]").count())}  # fmt: skip
            assert routes == {"math", "translation", "chitchat"}
            assert page.locator("#latency circle").count() == 3  # one p50 dot per model
            assert page.locator("#breakers .breaker.closed").count() == 4
            updates = int(live.get_attribute("data-updates") or 0)
            deadline = time.monotonic() + 10
            while int(live.get_attribute("data-updates") or 0) <= updates:
                assert time.monotonic() < deadline, "the traffic picture stopped updating"
                page.wait_for_timeout(200)
        finally:
            browser.close()
    assert errors == []
    assert foreign == []
