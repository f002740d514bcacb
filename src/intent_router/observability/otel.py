"""OpenTelemetry export of finished requests (the ``[otel]`` extra; imported only when on).

Spans are built after the fact from the request's record (:mod:`.spans`) with explicit start
and end times, so nothing on the request path opens or carries a span: the request only puts
its record on a bounded queue (a full queue drops it, with one warning), and a worker thread
builds the spans (the SDK's span creation costs a few hundred microseconds per request, kept
off the event loop). A caller's ``traceparent`` header (W3C trace context) makes the request
span its child. Export goes through a ``BatchSpanProcessor`` (its own thread) to the OTLP
HTTP exporter, which reads the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default
``http://localhost:4318``) or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``; ``OTEL_SERVICE_NAME`` (default
``intent-router``) and ``OTEL_RESOURCE_ATTRIBUTES`` name the service.

The provider is this tracer's own, never the process-wide global one, so two apps in one
process (tests) do not share spans.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from intent_router.observability.record import RequestRecord
from intent_router.observability.spans import SpanData, request_span

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "intent-router"
MAX_QUEUE = 4096  # records waiting for the worker
SCOPE = "intent_router"
_KINDS = {"server": trace.SpanKind.SERVER, "client": trace.SpanKind.CLIENT}


class OtelTracer:
    """Turns request records into spans and exports them in batches, off the request path."""

    def __init__(
        self,
        exporter: SpanExporter | None = None,
        *,
        upstream_ids: Mapping[str, str] | None = None,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.upstream_ids = dict(upstream_ids or {})
        self.provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)
        self.provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        self.dropped = 0
        self._tracer = self.provider.get_tracer(SCOPE)
        self._propagator = TraceContextTextMapPropagator()
        self._queue: queue.Queue[RequestRecord | None] = queue.Queue(max_queue)
        self._warned: set[str] = set()
        self._worker = threading.Thread(target=self._run, name="intent-router-traces", daemon=True)
        self._worker.start()

    def record(self, record: RequestRecord) -> None:
        """Queue the record for the worker; never blocks (a full queue drops it)."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            self._warn_once("trace queue full: dropping request traces")

    def flush(self, timeout_ms: int = 30_000) -> bool:
        """Wait until every queued record is exported (tests, shutdown)."""
        self._queue.join()
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        if self._worker.is_alive():
            try:
                self._queue.put(None, timeout=10)  # after the records already queued
            except queue.Full:
                log.warning("trace worker stuck: %d records not exported", self._queue.qsize())
            self._worker.join(timeout=10)
        self.provider.shutdown()

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    return
                self._export(record)
            finally:
                self._queue.task_done()

    def _export(self, record: RequestRecord) -> None:
        try:
            parent = self._parent(record.traceparent)
            self._emit(request_span(record, self.upstream_ids), parent)
        except Exception:  # one bad record must not stop the worker
            self._warn_once("could not build the trace of a request", exc_info=True)

    def _warn_once(self, message: str, *, exc_info: bool = False) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning(message, exc_info=exc_info)

    def _parent(self, traceparent: str | None) -> Context | None:
        if not traceparent:
            return None
        return self._propagator.extract({"traceparent": traceparent})

    def _emit(self, data: SpanData, parent: Context | None) -> None:
        span = self._tracer.start_span(
            data.name,
            context=parent,
            kind=_KINDS[data.kind],
            attributes=data.attributes,
            start_time=data.start_ns,
        )
        if data.error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        inside = trace.set_span_in_context(span)
        for child in data.children:
            self._emit(child, inside)
        span.end(end_time=data.end_ns)


def _resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named
    ``intent-router`` when those leave the service unnamed."""
    resource = Resource.create()
    named = str(resource.attributes.get(SERVICE_NAME, ""))
    if not named or named.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
    return resource
