"""OpenTelemetry traces through the real app (the [otel] extra; skipped without it)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from tests.test_api_cache import make_settings

from intent_router.api.app import create_app
from intent_router.embedding.encoder import Encoder
from intent_router.observability.otel import OtelTracer
from intent_router.testing import FakeUpstream, Fault
from intent_router.testing.server import serve_in_thread

UPSTREAM = {"strong-coder": "claude-up", "cheap-general": "gpt-up", "fast-small": "small-up"}
FALLBACK_Q = "implement a linked list in C"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def chat(url: str, rid: str, content: str, headers: dict[str, str] | None = None,
         **body: Any) -> httpx.Response:  # fmt: skip
    payload = {"model": "auto", "messages": [{"role": "user", "content": content}], **body}
    sent = {"x-request-id": rid, **(headers or {})}
    return httpx.post(f"{url}/v1/chat/completions", json=payload, headers=sent, timeout=30)


def traced(settings: Any, encoder: Encoder, send: Any) -> list[ReadableSpan]:
    """Serve with an in-memory exporter behind the tracer's batch processor; the app's
    shutdown flushes it."""
    exporter = InMemorySpanExporter()
    tracer = OtelTracer(exporter, upstream_ids=UPSTREAM)
    with serve_in_thread(create_app(settings, encoder=encoder, tracer=tracer)) as url:
        send(url)
    return list(exporter.get_finished_spans())


def values(spans: list[ReadableSpan]) -> str:
    return " ".join(str(v) for span in spans for v in (span.attributes or {}).values())


def test_a_routed_request_with_a_fallback_continues_the_callers_trace(
    fake: FakeUpstream, encoder: Encoder, tmp_path: Path
) -> None:
    fake.reset()
    fake.script("claude-up", Fault.http(503))
    statuses: list[int] = []

    def send(url: str) -> None:
        parent = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        answer = chat(url, "t-fallback", FALLBACK_Q, parent, max_tokens=64, temperature=0.3)
        statuses.append(answer.status_code)
        statuses.append(chat(url, "t-plain", "hi there, how are you today").status_code)

    spans = traced(make_settings(tmp_path, fake), encoder, send)
    assert statuses == [200, 200]

    requests = {s.attributes["intent_router.request_id"]: s for s in spans
                if s.kind is SpanKind.SERVER and s.attributes}  # fmt: skip
    assert set(requests) == {"t-fallback", "t-plain"}
    root = requests["t-fallback"]
    assert root.name == "chat auto"
    assert f"{root.context.trace_id:032x}" == TRACE_ID  # the caller's trace goes on
    assert root.parent is not None and f"{root.parent.span_id:016x}" == PARENT_ID
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "auto"
    assert attrs["gen_ai.response.model"] == "cheap-general"
    assert attrs["intent_router.route"] == "code"
    assert attrs["intent_router.cache.tier"] == "miss"
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert float(attrs["intent_router.score"]) > 0.5  # type: ignore[arg-type]
    assert int(attrs["gen_ai.usage.input_tokens"]) > 0  # type: ignore[call-overload]
    assert int(attrs["gen_ai.usage.output_tokens"]) > 0  # type: ignore[call-overload]
    assert root.status.status_code is StatusCode.UNSET
    assert root.end_time is not None and root.start_time is not None

    attempts = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    assert [s.name for s in attempts] == ["chat claude-up", "chat gpt-up"]
    failed, answered = attempts
    assert all(s.kind is SpanKind.CLIENT for s in attempts)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and answered.attributes is not None
    assert failed.attributes["error.type"] == "503"
    assert failed.attributes["gen_ai.provider.name"] == "anthropic"
    assert answered.attributes["gen_ai.provider.name"] == "openai"
    assert answered.attributes["gen_ai.request.model"] == "gpt-up"
    assert answered.attributes["gen_ai.usage.output_tokens"] == attrs["gen_ai.usage.output_tokens"]
    assert root.start_time <= failed.start_time  # type: ignore[operator]
    assert answered.end_time == root.end_time

    plain = requests["t-plain"]
    assert plain.parent is None and plain.context.trace_id != root.context.trace_id
    assert "linked list" not in values(spans) and "how are you" not in values(spans)
    assert "intent_router.prompt" not in attrs  # --log-prompts off: no prompt text


def test_redacted_prompts_reach_the_trace_redacted(
    fake: FakeUpstream, encoder: Encoder, tmp_path: Path
) -> None:
    fake.reset()
    question = "translate this sentence into french: write to jane.doe@example.com"
    settings = make_settings(tmp_path, fake, log_prompts="redacted")
    spans = traced(settings, encoder, lambda url: chat(url, "t-redacted", question))
    (root,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert root.attributes is not None
    assert root.attributes["intent_router.prompt"] == (
        "translate this sentence into french: write to <EMAIL>"
    )
    assert "jane.doe" not in values(spans)


class Collector(BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector: keeps each decoded export request."""

    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/v1/traces":
            self.received.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_serve_with_otel_exports_over_otlp_http_to_the_configured_endpoint(
    fake: FakeUpstream, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.reset()
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "router-under-test")
    Collector.received.clear()
    try:
        settings = make_settings(tmp_path, fake, otel=True)
        with serve_in_thread(create_app(settings, encoder=encoder)) as url:
            assert chat(url, "t-otlp", "hi there, how are you today").status_code == 200
    finally:
        collector.shutdown()
        collector.server_close()
    resources = [r for request in Collector.received for r in request.resource_spans]
    service = {a.key: a.value.string_value for r in resources for a in r.resource.attributes}
    assert service["service.name"] == "router-under-test"
    spans = [s for r in resources for scope in r.scope_spans for s in scope.spans]
    names = sorted(s.name for s in spans)
    assert names == ["chat auto", "chat small-up"]  # the upstream id, from the models file
    root = next(s for s in spans if s.name == "chat auto")
    attrs = {a.key: a.value for a in root.attributes}
    assert attrs["intent_router.request_id"].string_value == "t-otlp"
    assert attrs["intent_router.route"].string_value == "chitchat"
