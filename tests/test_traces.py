"""What a trace says about a finished request (plain span data, no OpenTelemetry needed),
and the server without the [otel] extra."""

from __future__ import annotations

import subprocess
import sys

from intent_router.observability.record import RequestRecord
from intent_router.observability.spans import SpanData, request_span
from intent_router.providers.base import Attempt, Outcome

START = 1_700_000_000.25
UPSTREAM = {"strong-coder": "claude-up", "cheap-general": "gpt-up"}


def fallback_record(**extra: object) -> RequestRecord:
    """Routed to ``code``; strong-coder failed twice (503, then a timeout), cheap-general
    answered."""
    fields: dict[str, object] = {
        "route": "code",
        "chain": ["strong-coder", "cheap-general"],
        "routing": {"score": 0.81, "threshold": 0.33},
        "model": "cheap-general",
        "provider": "openai",
        "input_tokens": 12,
        "output_tokens": 30,
        "cost_usd": 0.0001,
        "latency_s": 1.0,
        "attempts": [
            Attempt("strong-coder", "anthropic", Outcome.RETRIED, 503, "upstream 503", 100.0),
            Attempt("strong-coder", "anthropic", Outcome.FAILED, None, "timed out", 500.0),
            Attempt("cheap-general", "openai", Outcome.OK, 200, "", 200.0),
        ],
        **extra,
    }
    return RequestRecord("req-1", "chat.completions", START, **fields)  # type: ignore[arg-type]


def all_values(span: SpanData) -> list[object]:
    values = list(span.attributes.values())
    for child in span.children:
        values += all_values(child)
    return values


def test_a_routed_request_with_a_fallback() -> None:
    span = request_span(fallback_record(max_tokens=256, temperature=0.2), UPSTREAM)

    assert (span.name, span.kind, span.error) == ("chat auto", "server", None)
    assert span.start_ns == int(START * 1e9) and span.end_ns - span.start_ns == 1_000_000_000
    assert span.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "auto",
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": "cheap-general",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 30,
        "intent_router.request_id": "req-1",
        "intent_router.endpoint": "chat.completions",
        "intent_router.route": "code",
        "intent_router.score": 0.81,
        "intent_router.threshold": 0.33,
        "intent_router.cache.tier": "miss",
        "intent_router.outcome": "ok",
        "intent_router.chain": "strong-coder,cheap-general",
        "intent_router.cost_usd": 0.0001,
    }
    retried, failed, answered = span.children
    assert [c.name for c in span.children] == ["chat claude-up", "chat claude-up", "chat gpt-up"]
    assert all(c.kind == "client" for c in span.children)
    assert (retried.error, failed.error, answered.error) == ("503", "timeout", None)
    assert retried.attributes["http.response.status_code"] == 503
    assert "http.response.status_code" not in failed.attributes
    assert answered.attributes["gen_ai.provider.name"] == "openai"
    assert answered.attributes["gen_ai.system"] == "openai"
    assert failed.attributes["gen_ai.provider.name"] == "anthropic"
    assert answered.attributes["intent_router.model"] == "cheap-general"
    assert answered.attributes["gen_ai.response.model"] == "gpt-up"
    assert answered.attributes["gen_ai.usage.output_tokens"] == 30
    assert "gen_ai.usage.output_tokens" not in failed.attributes
    assert answered.attributes["gen_ai.request.max_tokens"] == 256
    # back to back, each as long as it took, the last ending with the request
    assert answered.end_ns == span.end_ns
    assert [c.end_ns - c.start_ns for c in span.children] == [100_000_000, 500_000_000, 200_000_000]
    assert retried.end_ns == failed.start_ns and failed.end_ns == answered.start_ns
    assert retried.start_ns >= span.start_ns


def test_no_prompt_text_unless_the_record_carries_it() -> None:
    quiet = request_span(fallback_record())
    assert "intent_router.prompt" not in quiet.attributes
    assert all(
        "upstream 503" not in str(v) and "timed out" not in str(v) for v in all_values(quiet)
    )
    logged = request_span(fallback_record(prompt="mail <EMAIL> about it"))
    assert logged.attributes["intent_router.prompt"] == "mail <EMAIL> about it"


def test_a_cache_hit_has_no_attempts_and_a_pinned_request_names_its_model() -> None:
    hit = fallback_record(cache="semantic", similarity=0.9612345, attempts=[], cost_usd=0.0)
    span = request_span(hit)
    assert span.children == ()
    assert span.attributes["intent_router.cache.tier"] == "semantic"
    assert span.attributes["intent_router.cache.similarity"] == 0.9612
    assert "intent_router.cost_usd" not in span.attributes  # nothing was paid upstream
    pinned = request_span(fallback_record(pinned="cheap-general", route=None, routing={}))
    assert pinned.name == "chat cheap-general"
    assert pinned.attributes["gen_ai.request.model"] == "cheap-general"
    assert pinned.attributes["intent_router.route"] == "none"
    assert "intent_router.score" not in pinned.attributes


def test_a_failed_request_carries_its_error_type() -> None:
    exhausted = fallback_record(
        model=None, provider=None, input_tokens=None, output_tokens=None, cost_usd=None,
        outcome="error", error="ChainExhaustedError", reason="every model failed",
        attempts=[Attempt("strong-coder", "anthropic", Outcome.FAILED, 503, "x", 10.0),
                  Attempt("cheap-general", "openai", Outcome.SKIPPED, None, "breaker open")],
    )  # fmt: skip
    span = request_span(exhausted, UPSTREAM)
    assert span.error == "ChainExhaustedError"
    assert span.attributes["error.type"] == "ChainExhaustedError"
    assert span.attributes["intent_router.outcome"] == "error"
    assert "gen_ai.response.model" not in span.attributes
    failed, skipped = span.children
    assert failed.error == "503"
    assert skipped.error is None and skipped.start_ns == skipped.end_ns == span.end_ns
    assert skipped.attributes["intent_router.attempt.outcome"] == "skipped"
    broken = request_span(fallback_record(outcome="stream_error", reason="upstream cut"))
    assert broken.error == "stream_error" and broken.attributes["error.type"] == "stream_error"


BLOCK_OTEL_EXTRA = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
import intent_router.api.app
from intent_router.observability.tracing import NullTracer, make_tracer
assert isinstance(make_tracer(False), NullTracer)
from intent_router.cli import main
sys.exit(main(["serve", "--otel", "--routes", "no-such-folder"]))
"""


def test_without_the_extra_tracing_is_off_and_asking_for_it_names_the_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_OTEL_EXTRA], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "traces need the [otel] extra" in done.stderr
    assert "pip install 'intent-router[otel]'" in done.stderr
    assert "Traceback" not in done.stderr
