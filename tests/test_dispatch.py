"""The failure matrix, end to end against the fake upstream on a loopback port.

Sleeps are injected (recorded, never waited); real waiting is kept to timeouts ≤ 0.3 s.
Every case checks the result and the calls the fake upstream received.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from intent_router.dispatch import Dispatcher
from intent_router.errors import ChainExhaustedError
from intent_router.models import ModelsConfig
from intent_router.providers import (
    ChatRequest,
    Message,
    Outcome,
    StreamDone,
    StreamError,
    TextDelta,
)
from intent_router.resilience import ExponentialJitter, FixedBackoff
from intent_router.testing import FakeUpstream, Fault

REQ = ChatRequest([Message("system", "be nice"), Message("user", "hello world")])


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


class Sleeps:
    """An injected sleep that records the delays and returns at once."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def models(fake: FakeUpstream, *specs: tuple[str, str], **top: Any) -> ModelsConfig:
    """Models named ``primary``, ``secondary``… on the fake; upstream id = ``{name}-up``.

    A spec is (provider, overrides as 'key=value,…').
    """
    names = ["primary", "secondary", "tertiary"]
    entries: dict[str, Any] = {}
    for name, (provider, extra) in zip(names, specs, strict=False):
        entry: dict[str, Any] = {
            "provider": provider, "base_url": fake.base_url(provider), "model": f"{name}-up",
            "timeout_s": 0.3, "max_retries": 2, "price_per_mtok_input": 1.0,
            "price_per_mtok_output": 2.0,
        }  # fmt: skip
        for pair in filter(None, extra.split(",")):
            key, _, value = pair.partition("=")
            entry[key] = float(value) if "." in value else int(value) if value.isdigit() else value
        entries[name] = entry
    data = {"models": entries, "default_chain": list(entries), **top}
    return ModelsConfig.model_validate(data)


def dispatcher(
    cfg: ModelsConfig, client: httpx.AsyncClient, sleeps: Sleeps | None = None, **kw: Any
) -> Dispatcher:
    kw.setdefault("backoff", FixedBackoff(0.01))
    return Dispatcher(cfg, client, sleep=sleeps or Sleeps(), **kw)


CHAIN = ["primary", "secondary"]


def outcomes(attempts: Any) -> list[tuple[str, str, int | None]]:
    return [(a.model, a.outcome.value, a.status) for a in attempts]


# -- complete ----------------------------------------------------------------------------


async def test_429_on_the_last_choice_waits_for_retry_after(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    """The only model left: wait its Retry-After (it fits the deadline), then call again."""
    fake.script("primary-up", Fault.http(429, retry_after=2))
    clock = FakeClock()
    sleeps = Sleeps(clock)
    cfg = models(fake, ("openai", ""), rate_limit={"max_wait_s": 3})
    d = dispatcher(
        cfg, client, sleeps, clock=clock,
        backoff=ExponentialJitter(rng=__import__("random").Random(1)),
    )  # fmt: skip
    resp = await d.complete(REQ, ["primary"], route="chat")
    assert (resp.model, resp.text, resp.route) == ("primary", "[primary-up] hello world", "chat")
    assert sleeps.delays == [pytest.approx(2.0)]
    assert outcomes(resp.attempts) == [("primary", "retried", 429), ("primary", "ok", 200)]
    assert resp.attempts[0].retry_after == 2.0
    assert fake.calls("primary-up") == 2


async def test_429_moves_on_and_cools_the_model_for_other_requests(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("primary-up", Fault.http(429, retry_after=2))
    clock = FakeClock()
    sleeps = Sleeps(clock)
    cfg = models(
        fake, ("openai", ""), ("anthropic", ""),
        breaker={"minimum_calls": 1, "failure_rate": 0.5},
    )  # fmt: skip
    d = dispatcher(cfg, client, sleeps, clock=clock)
    resp = await d.complete(REQ, CHAIN)
    assert outcomes(resp.attempts) == [("primary", "failed", 429), ("secondary", "ok", 200)]
    assert "cooling down 2.00s" in resp.attempts[0].reason
    assert sleeps.delays == []  # moved on at once instead of sleeping on it
    clock.now += 1.5  # still cooling: skipped, not called
    resp = await d.complete(REQ, CHAIN)
    assert outcomes(resp.attempts) == [("primary", "skipped", None), ("secondary", "ok", 200)]
    assert resp.attempts[0].reason == "cooling down after 429 (0.50s left)"
    clock.now += 0.5
    assert (await d.complete(REQ, CHAIN)).model == "primary"
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (2, 2)
    assert d.breaker_states()["primary"] == "closed"  # back-pressure is not a failure


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_5xx_exhausts_retries_then_secondary(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    fake.always("primary-up", Fault.http(503))
    sleeps = Sleeps()
    d = dispatcher(models(fake, (provider, ""), ("gemini", "")), client, sleeps)
    resp = await d.complete(REQ, CHAIN)
    assert resp.text == "[secondary-up] hello world" and resp.provider == "gemini"
    assert outcomes(resp.attempts) == [("primary", "failed", 503), ("secondary", "ok", 200)]
    assert sleeps.delays == []  # failover first: no backoff before the next model
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 1)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_retries_come_after_the_chain_failed_once(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    fake.always("primary-up", Fault.http(503))
    fake.script("secondary-up", Fault.http(502))
    sleeps = Sleeps()
    d = dispatcher(models(fake, (provider, ""), ("gemini", "")), client, sleeps)
    resp = await d.complete(REQ, CHAIN)
    assert resp.model == "secondary"
    assert outcomes(resp.attempts) == [
        ("primary", "retried", 503), ("secondary", "retried", 502), ("primary", "failed", 503),
        ("secondary", "ok", 200),
    ]  # fmt: skip
    assert len(sleeps.delays) <= 2 and all(d <= 0.01 for d in sleeps.delays)
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (2, 2)


async def test_hang_times_out_then_secondary(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.always("primary-up", Fault.hang())
    cfg = models(fake, ("anthropic", "timeout_s=0.2,max_retries=0"), ("openai", ""))
    started = time.monotonic()
    resp = await dispatcher(cfg, client).complete(REQ, CHAIN)
    assert time.monotonic() - started < 1.0
    assert resp.model == "secondary"
    first = resp.attempts[0]
    assert (first.outcome, first.status) == (Outcome.FAILED, None) and "timed out" in first.reason
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 1)


async def test_slow_answer_within_timeout_is_fine(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("primary-up", Fault.slow(0.05))
    resp = await dispatcher(models(fake, ("gemini", ""), ("openai", "")), client).complete(
        REQ, CHAIN
    )
    assert resp.model == "primary" and fake.calls() == 1


@pytest.mark.parametrize("status", [401, 400, 403, 404, 422])
async def test_client_errors_move_on_without_retry(
    fake: FakeUpstream, client: httpx.AsyncClient, status: int
) -> None:
    fake.always("primary-up", Fault.http(status))
    sleeps = Sleeps()
    resp = await dispatcher(
        models(fake, ("openai", ""), ("anthropic", "")), client, sleeps
    ).complete(REQ, CHAIN)
    assert outcomes(resp.attempts) == [("primary", "failed", status), ("secondary", "ok", 200)]
    assert sleeps.delays == []
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 1)


@pytest.mark.parametrize("fault", [Fault.malformed(), Fault.missing_fields()])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_unusable_200_moves_on(
    fake: FakeUpstream, client: httpx.AsyncClient, fault: Fault, provider: str
) -> None:
    fake.always("primary-up", fault)
    resp = await dispatcher(models(fake, (provider, ""), ("openai", "")), client).complete(
        REQ, CHAIN
    )
    assert resp.model == "secondary"
    assert outcomes(resp.attempts)[0] == ("primary", "failed", 200)
    assert "unusable answer" in resp.attempts[0].reason
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 1)


async def test_dropped_connection_is_retried(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.script("primary-up", Fault.drop())
    resp = await dispatcher(models(fake, ("openai", "")), client).complete(REQ, ["primary"])
    assert outcomes(resp.attempts) == [("primary", "retried", None), ("primary", "ok", 200)]
    assert "connection dropped" in resp.attempts[0].reason
    assert fake.calls("primary-up") == 2


async def test_all_fail_raises_chain_exhausted_with_attempts(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.always("primary-up", Fault.http(500))
    fake.always("secondary-up", Fault.http(401))
    cfg = models(fake, ("openai", "max_retries=1"), ("gemini", ""))
    with pytest.raises(ChainExhaustedError) as info:
        await dispatcher(cfg, client).complete(REQ, CHAIN)
    err = info.value
    assert err.status == 502
    assert outcomes(err.attempts) == [
        ("primary", "retried", 500), ("secondary", "failed", 401), ("primary", "failed", 500),
    ]  # fmt: skip
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (2, 1)


async def test_cost_usage_and_latency(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    resp = await dispatcher(models(fake, ("anthropic", "")), client).complete(REQ, ["primary"])
    assert (resp.input_tokens, resp.output_tokens) == (5, 3)  # fake: len//4+1 per text, words
    assert resp.cost_usd == pytest.approx((5 * 1.0 + 3 * 2.0) / 1e6)
    assert resp.latency_ms > 0 and not resp.usage_estimated
    assert resp.upstream_model == "primary-up" and resp.finish_reason == "stop"
    assert resp.to_dict()["attempts"][0]["outcome"] == "ok"


# -- breaker -------------------------------------------------------------------------------


async def test_breaker_opens_skips_then_single_probe_closes(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    cfg = models(
        fake, ("openai", "max_retries=0"), ("anthropic", ""),
        breaker={"minimum_calls": 2, "cooldown_s": 30, "half_open_probes": 1},
    )  # fmt: skip
    changes: list[str] = []
    listener = lambda n, old, new: changes.append(f"{n}:{new}")  # noqa: E731
    d = dispatcher(cfg, client, Sleeps(clock), clock=clock, breaker_listeners=[listener])
    fake.always("primary-up", Fault.http(503))
    for _ in range(2):
        assert (await d.complete(REQ, CHAIN)).model == "secondary"
    assert d.breaker_states() == {"primary": "open", "secondary": "closed"}
    assert fake.calls("primary-up") == 2

    clock.now += 29.9  # still cooling down: no call reaches the dead upstream
    for _ in range(3):
        resp = await d.complete(REQ, CHAIN)
        assert outcomes(resp.attempts)[0] == ("primary", "skipped", None)
        assert resp.attempts[0].reason == "breaker open"
    assert fake.calls("primary-up") == 2

    clock.now += 0.1
    fake.always("primary-up", Fault.slow(0.1))  # healthy again, but slow
    results = await asyncio.gather(*(d.complete(REQ, CHAIN) for _ in range(3)))
    assert sorted(r.model for r in results) == ["primary", "secondary", "secondary"]
    assert fake.calls("primary-up") == 3  # exactly one probe went through
    assert d.breaker_states()["primary"] == "closed"
    assert changes == ["primary:open", "primary:half_open", "primary:closed"]
    assert (await d.complete(REQ, CHAIN)).model == "primary"


async def test_a_probe_that_gets_a_request_fault_frees_the_half_open_slot(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    """A 400 on the probe says nothing about the model: the next request may probe again."""
    clock = FakeClock()
    cfg = models(
        fake, ("openai", "max_retries=0"), ("anthropic", ""),
        breaker={"minimum_calls": 1, "cooldown_s": 10, "half_open_probes": 1},
    )  # fmt: skip
    d = dispatcher(cfg, client, Sleeps(), clock=clock)
    fake.always("primary-up", Fault.http(503))
    assert (await d.complete(REQ, CHAIN)).model == "secondary"
    clock.now += 10
    fake.always("primary-up", Fault.http(400))
    assert (await d.complete(REQ, CHAIN)).model == "secondary"
    fake.always("primary-up", None)
    assert (await d.complete(REQ, CHAIN)).model == "primary"
    assert d.breaker_states()["primary"] == "closed"
    assert fake.calls("primary-up") == 3


async def test_failed_probe_reopens(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    cfg = models(
        fake, ("gemini", "max_retries=3"), ("openai", ""),
        breaker={"minimum_calls": 1, "cooldown_s": 10, "half_open_probes": 1},
    )  # fmt: skip
    d = dispatcher(cfg, client, Sleeps(), clock=clock)
    fake.always("primary-up", Fault.http(500))
    await d.complete(REQ, CHAIN)
    assert fake.calls("primary-up") == 1  # opened on the first failure: no retries
    clock.now += 10
    resp = await d.complete(REQ, CHAIN)
    assert outcomes(resp.attempts) == [("primary", "failed", 500), ("secondary", "ok", 200)]
    assert fake.calls("primary-up") == 2 and d.breaker_states()["primary"] == "open"


async def test_every_model_open_without_panic_is_503(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    cfg = models(
        fake, ("openai", "max_retries=0"), ("openai", "max_retries=0"),
        breaker={"minimum_calls": 1, "cooldown_s": 10, "half_open_probes": 1},
        panic={"rate_per_s": 0},
    )  # fmt: skip
    d = dispatcher(cfg, client, clock=clock)
    fake.always("primary-up", Fault.http(503))
    fake.always("secondary-up", Fault.http(503))
    with pytest.raises(ChainExhaustedError) as first:
        await d.complete(REQ, CHAIN)
    assert first.value.status == 502
    with pytest.raises(ChainExhaustedError) as second:
        await d.complete(REQ, CHAIN)
    assert second.value.status == 503
    assert [a.outcome for a in second.value.attempts] == [Outcome.SKIPPED, Outcome.SKIPPED]
    assert fake.calls() == 2


# -- checks before calling ---------------------------------------------------------------


async def test_context_window_skip(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    cfg = models(fake, ("openai", "context_window=100"), ("gemini", ""))
    big = ChatRequest([Message("user", "x" * 400)])  # ~104 tokens estimated
    resp = await dispatcher(cfg, client).complete(big, CHAIN)
    assert resp.model == "secondary"
    assert outcomes(resp.attempts)[0] == ("primary", "skipped", None)
    assert "context window 100" in resp.attempts[0].reason
    assert fake.calls("primary-up") == 0
    small = ChatRequest([Message("user", "x" * 200)], max_tokens=60)  # 54 + 60 > 100
    assert (await dispatcher(cfg, client).complete(small, CHAIN)).model == "secondary"


async def test_missing_key_env_fails_that_attempt_only(
    fake: FakeUpstream, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IR_TEST_MISSING_KEY", raising=False)
    monkeypatch.setenv("IR_TEST_KEY", "sk-present")
    cfg = models(
        fake,
        ("openai", "api_key_env=IR_TEST_MISSING_KEY"),
        ("anthropic", "api_key_env=IR_TEST_KEY"),
    )
    resp = await dispatcher(cfg, client).complete(REQ, CHAIN)
    assert resp.model == "secondary"
    assert outcomes(resp.attempts) == [("primary", "skipped", None), ("secondary", "ok", 200)]
    assert resp.attempts[0].reason == "key variable IR_TEST_MISSING_KEY is not set"
    assert fake.calls("primary-up") == 0
    assert fake.requests("secondary-up")[0].headers["x-api-key"] == "sk-present"


async def test_deadline_bounds_the_whole_request(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.always("primary-up", Fault.hang())
    cfg = models(fake, ("openai", "timeout_s=5.0"), ("anthropic", ""))
    started = time.monotonic()
    with pytest.raises(ChainExhaustedError) as info:
        await dispatcher(cfg, client).complete(REQ, CHAIN, deadline_s=0.25)
    assert time.monotonic() - started < 1.0
    assert info.value.status == 503
    assert outcomes(info.value.attempts) == [
        ("primary", "failed", None),
        ("secondary", "skipped", None),
    ]
    assert info.value.attempts[1].reason == "deadline exceeded"
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 0)


async def test_retry_after_beyond_deadline_moves_on_without_sleeping(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.always("primary-up", Fault.http(429, retry_after=30))
    sleeps = Sleeps()
    resp = await dispatcher(models(fake, ("openai", ""), ("gemini", "")), client, sleeps).complete(
        REQ, CHAIN, deadline_s=5
    )
    assert outcomes(resp.attempts) == [("primary", "failed", 429), ("secondary", "ok", 200)]
    assert sleeps.delays == [] and fake.calls("primary-up") == 1


async def test_logs_hold_no_key_and_no_prompt(
    fake: FakeUpstream, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="intent_router")
    monkeypatch.setenv("IR_TEST_KEY", "sk-VERY-SECRET")
    fake.script("primary-up", Fault.http(503), Fault.http(401))
    cfg = models(fake, ("openai", "api_key_env=IR_TEST_KEY"), ("gemini", "api_key_env=IR_TEST_KEY"))
    secret_prompt = ChatRequest([Message("user", "my bank password is hunter2")])
    resp = await dispatcher(cfg, client).complete(secret_prompt, CHAIN)
    assert resp.model == "secondary" and "dispatch" in caplog.text
    assert "sk-VERY-SECRET" not in caplog.text and "hunter2" not in caplog.text
    assert "sk-VERY-SECRET" not in repr(resp.to_dict())


# -- streaming ---------------------------------------------------------------------------


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in events]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_stream_through_each_provider(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    d = dispatcher(models(fake, (provider, "")), client)
    events = await collect(d.stream(REQ, ["primary"], route="chat"))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "[primary-up] hello world"
    done = events[-1]
    assert isinstance(done, StreamDone)
    resp = done.response
    assert (resp.text, resp.model, resp.provider, resp.route) == (
        "[primary-up] hello world", "primary", provider, "chat",
    )  # fmt: skip
    assert (resp.input_tokens, resp.output_tokens, resp.finish_reason) == (5, 3, "stop")
    assert resp.cost_usd == pytest.approx(11 / 1e6) and not resp.usage_estimated
    assert outcomes(resp.attempts) == [("primary", "ok", 200)]
    assert fake.calls("primary-up") == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_stream_fails_over_before_the_first_chunk(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    fake.script("primary-up", Fault.http(503), Fault.malformed())
    d = dispatcher(models(fake, (provider, ""), (provider, "")), client)
    events = await collect(d.stream(REQ, CHAIN))
    assert isinstance(events[-1], StreamDone)
    assert events[-1].response.model == "secondary"
    assert outcomes(events[-1].response.attempts) == [
        ("primary", "failed", 503), ("secondary", "ok", 200),
    ]  # fmt: skip
    assert "".join(e.text for e in events[:-1]) == "[secondary-up] hello world"
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 1)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_stream_failure_after_first_chunk_is_an_error_event(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    fake.script("primary-up", Fault.break_stream())
    d = dispatcher(models(fake, (provider, ""), ("openai", "")), client)
    events = await collect(d.stream(REQ, CHAIN))
    assert events[0] == TextDelta("[primary-up] ")
    err = events[-1]
    assert isinstance(err, StreamError) and err.model == "primary"
    assert "connection dropped" in err.message
    assert outcomes(err.attempts) == [("primary", "failed", None)]
    assert "after first chunk" in err.attempts[0].reason
    assert (fake.calls("primary-up"), fake.calls("secondary-up")) == (1, 0)


async def test_stream_hang_before_first_chunk_fails_over(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("primary-up", Fault.hang())
    cfg = models(fake, ("anthropic", "timeout_s=0.2,max_retries=0"), ("gemini", ""))
    events = await collect(dispatcher(cfg, client).stream(REQ, CHAIN))
    assert isinstance(events[-1], StreamDone) and events[-1].response.model == "secondary"
    assert "timed out" in events[-1].response.attempts[0].reason


async def test_stream_all_fail_raises_before_any_event(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.always("primary-up", Fault.http(401))
    fake.always("secondary-up", Fault.http(400))
    stream = dispatcher(models(fake, ("openai", ""), ("gemini", "")), client).stream(REQ, CHAIN)
    with pytest.raises(ChainExhaustedError) as info:
        await anext(stream)
    assert info.value.status == 502 and len(info.value.attempts) == 2
    assert fake.calls() == 2


# -- load-ish ----------------------------------------------------------------------------


async def test_chaos_with_retries_mostly_succeeds(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.chaos(p_503=0.3, p_429=0.1, seed=7)
    cfg = models(
        fake, ("openai", "max_retries=3,timeout_s=5.0"), ("gemini", "max_retries=3,timeout_s=5.0"),
        breaker={"minimum_calls": 1000, "cooldown_s": 1}, rate_limit={"cooldown_s": 0.01},
    )  # fmt: skip
    d = Dispatcher(cfg, client, backoff=FixedBackoff(0.01))  # real sleeps, 10 ms each
    results = await asyncio.gather(
        *(d.complete(REQ, CHAIN) for _ in range(40)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) >= 38
    answered = [a for r in ok for a in r.attempts if a.status is not None]  # got an HTTP reply
    assert fake.calls() >= len(answered) >= 40


async def test_stream_closed_early_by_the_caller(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    d = dispatcher(models(fake, ("anthropic", "")), client)
    stream = d.stream(REQ, ["primary"])
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]  # client went away
    assert d.breaker_states()["primary"] == "closed"
    assert (await d.complete(REQ, ["primary"])).model == "primary"
    assert fake.calls("primary-up") == 2


# -- load controls: breaker weight, retry budget, panic, bulkheads -----------------------


async def test_a_requests_retries_count_once_in_the_breaker(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    """Three failed attempts of one request are one failure, not three."""
    fake.always("primary-up", Fault.http(503))
    cfg = models(fake, ("openai", "max_retries=2"), breaker={"minimum_calls": 2})
    d = dispatcher(cfg, client)
    with pytest.raises(ChainExhaustedError) as info:
        await d.complete(REQ, ["primary"])
    assert [a.outcome.value for a in info.value.attempts] == ["retried", "retried", "failed"]
    assert fake.calls("primary-up") == 3
    assert d.breaker_states()["primary"] == "closed"  # 1 outcome < minimum_calls 2
    with pytest.raises(ChainExhaustedError):
        await d.complete(REQ, ["primary"])
    assert d.breaker_states()["primary"] == "open"  # 2 outcomes, both failed


async def test_breaker_opens_on_the_rate_not_on_a_streak(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    cfg = models(
        fake, ("openai", "max_retries=0"), ("anthropic", ""),
        breaker={"minimum_calls": 10, "failure_rate": 0.5, "window_s": 30},
    )  # fmt: skip
    d = dispatcher(cfg, client)
    fake.script("primary-up", *[Fault.http(503)] * 4, *[Fault.OK] * 5)  # 4 of 9 failed
    for _ in range(9):
        await d.complete(REQ, CHAIN)
    assert d.breaker_states()["primary"] == "closed"
    fake.always("primary-up", Fault.http(500))
    await d.complete(REQ, CHAIN)  # 5 of 10: the rate reaches 50 %
    assert d.breaker_states()["primary"] == "open"


async def test_retry_budget_skips_retries_visibly(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.always("primary-up", Fault.http(503))
    cfg = models(fake, ("openai", "max_retries=2"), retry_budget={"ratio": 0, "min_per_s": 0})
    d = dispatcher(cfg, client)
    with pytest.raises(ChainExhaustedError) as info:
        await d.complete(REQ, ["primary"])
    assert outcomes(info.value.attempts) == [
        ("primary", "failed", 503), ("primary", "skipped", None)
    ]  # fmt: skip
    assert info.value.attempts[1].reason == "retry skipped: retry budget exhausted"
    assert fake.calls("primary-up") == 1
    registry = d.metrics.registry
    assert registry.get_sample_value("intent_router_retries_skipped_total") == 1


async def test_panic_trickle_when_every_breaker_is_open(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    cfg = models(
        fake, ("openai", "max_retries=0"), ("gemini", "max_retries=0"),
        breaker={"minimum_calls": 1, "cooldown_s": 30, "half_open_probes": 2},
        panic={"rate_per_s": 1, "burst": 1},
    )  # fmt: skip
    d = dispatcher(cfg, client, Sleeps(clock), clock=clock)
    fake.always("primary-up", Fault.http(503))
    fake.always("secondary-up", Fault.http(503))
    with pytest.raises(ChainExhaustedError):
        await d.complete(REQ, CHAIN)
    assert d.breaker_states() == {"primary": "open", "secondary": "open"}
    d.metrics.exposition()  # a scrape reads the breaker states
    for name in ("primary", "secondary"):
        labels = {"model": name}
        assert d.metrics.registry.get_sample_value("intent_router_breaker_state", labels) == 2
    clock.now += 1
    for expected in ("primary", "secondary"):  # one token per model and second
        with pytest.raises(ChainExhaustedError) as info:
            await d.complete(REQ, CHAIN)
        assert info.value.status == 502  # called (in panic) and failed
        panic = info.value.attempts[-1]
        assert (panic.model, panic.status) == (expected, 503)
        assert panic.reason.startswith("panic: every model of the chain is unavailable")
    with pytest.raises(ChainExhaustedError) as info:  # both buckets empty: refused, no call
        await d.complete(REQ, CHAIN)
    assert info.value.status == 503 and fake.calls() == 4
    fake.reset()  # both healthy again, breakers still open for 30 s
    clock.now += 1
    resp = await d.complete(REQ, CHAIN)  # the trickle sees the recovery
    assert outcomes(resp.attempts)[-1] == ("primary", "ok", 200)  # a tie: chain order
    assert resp.attempts[-1].reason.startswith("panic")
    assert d.breaker_states()["primary"] == "half_open"  # before its cool-down ended
    d.metrics.exposition()
    half_open = d.metrics.registry.get_sample_value(
        "intent_router_breaker_state", {"model": "primary"}
    )
    assert half_open == 1
    assert (await d.complete(REQ, CHAIN)).model == "primary"  # a regular probe now
    assert d.breaker_states()["primary"] == "closed"
    assert d.metrics.registry.get_sample_value("intent_router_panic_calls_total") == 3


async def test_model_at_its_cap_is_skipped(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.always("primary-up", Fault.slow(0.2))
    cfg = models(fake, ("openai", "max_in_flight=1,timeout_s=5.0"), ("anthropic", ""))
    d = dispatcher(cfg, client)
    first, second = await asyncio.gather(d.complete(REQ, CHAIN), d.complete(REQ, CHAIN))
    assert (first.model, second.model) == ("primary", "secondary")
    assert outcomes(second.attempts)[0] == ("primary", "skipped", None)
    assert second.attempts[0].reason == "at capacity (max_in_flight 1)"
    assert fake.calls("primary-up") == 1
    assert d.bulkheads.in_flight("primary") == 0


async def test_a_cooling_model_is_called_when_the_rest_failed(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    cfg = models(fake, ("openai", ""), ("anthropic", "max_retries=0"))
    d = dispatcher(cfg, client, sleeps, clock=clock)
    d.cooldowns.cool("primary", 1.0)
    fake.always("secondary-up", Fault.http(503))
    resp = await d.complete(REQ, CHAIN)
    assert outcomes(resp.attempts) == [
        ("primary", "skipped", None), ("secondary", "failed", 503), ("primary", "ok", 200),
    ]  # fmt: skip
    assert sleeps.delays == [pytest.approx(1.0)]


async def test_unset_key_variables_are_reported_once_at_start(
    fake: FakeUpstream, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.delenv("IR_TEST_UNSET_A", raising=False)
    monkeypatch.delenv("IR_TEST_UNSET_B", raising=False)
    cfg = models(
        fake, ("openai", "api_key_env=IR_TEST_UNSET_A"), ("gemini", "api_key_env=IR_TEST_UNSET_B"),
        ("openai", ""),
    )  # fmt: skip
    caplog.set_level(logging.WARNING, logger="intent_router")
    d = dispatcher(cfg, client)
    lines = [r.getMessage() for r in caplog.records if "key variable" in r.getMessage()]
    assert lines == [
        "models skipped until their key variable is set: "
        "primary (IR_TEST_UNSET_A), secondary (IR_TEST_UNSET_B)"
    ]
    resp = await d.complete(REQ, ["primary", "secondary", "tertiary"])
    assert [a.outcome.value for a in resp.attempts] == ["skipped", "skipped", "ok"]
    assert fake.calls("primary-up") == fake.calls("secondary-up") == 0
